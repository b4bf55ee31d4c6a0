import { isIP } from "node:net";

/**
 * One spelling per address, so a per-IP limit counts addresses, not spellings:
 * IPv6 compressed and lower case, an IPv4-mapped IPv6 address as its IPv4
 * address. Undefined for anything that is not an IP address.
 */
export function normalizeClientIp(ip: string): string | undefined {
  const version = isIP(ip);
  if (version === 4) return ip.split(".").map((part) => String(Number(part))).join(".");
  if (version !== 6) return undefined;
  let canonical: string;
  try {
    // The URL parser prints IPv6 in its canonical (RFC 5952) form; it refuses zone ids ("fe80::1%eth0").
    canonical = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (mapped) {
    const [high, low] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
    return [high >> 8, high & 255, low >> 8, low & 255].join(".");
  }
  return canonical;
}
