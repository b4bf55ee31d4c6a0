import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from "node:crypto";
import type { RandomSource } from "./ports.js";

/** Keys for protecting codes at rest and on the bus; each exactly 32 bytes. */
export interface CodeKeys {
  /** HMAC-SHA-256 key for the hash used to check codes. */
  readonly hashKey: Buffer;
  /** AES-256-GCM key for the sealed copy that workers render. */
  readonly sealKey: Buffer;
}

const SEAL_VERSION = "v1";

/**
 * Protects a code so that it is never stored or published in plaintext.
 *
 * The hash and the seal are both bound to the verification id (HMAC input and
 * GCM additional data), so a code or sealed blob copied onto another
 * verification does not check or open there.
 */
export class CodeProtector {
  constructor(
    private readonly keys: CodeKeys,
    private readonly random: RandomSource,
  ) {
    for (const [name, key] of Object.entries(keys)) {
      if (key.length !== 32) throw new RangeError(`${name} must be 32 bytes, got ${key.length}`);
    }
  }

  hash(verificationId: string, code: string): string {
    return this.mac(`code\0${verificationId}\0${code}`);
  }

  /** Constant-time comparison of a submitted code with the stored hash. */
  matches(verificationId: string, code: string, storedHash: string): boolean {
    const expected = Buffer.from(storedHash, "hex");
    const actual = Buffer.from(this.hash(verificationId, code), "hex");
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }

  /**
   * A keyed, non-reversible key for a destination (phone, email), so rate-limit
   * and lock tables never hold the destination itself.
   */
  destinationKey(destination: string): string {
    return this.mac(`destination\0${destination}`);
  }

  seal(verificationId: string, code: string): string {
    const iv = this.random.bytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.keys.sealKey, iv);
    cipher.setAAD(Buffer.from(verificationId));
    const body = Buffer.concat([cipher.update(code, "utf8"), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [SEAL_VERSION, iv, body, tag].map((p) => (typeof p === "string" ? p : p.toString("base64url"))).join(".");
  }

  /** Opens a sealed code; throws if it was tampered with or sealed for another verification. */
  unseal(verificationId: string, sealed: string): string {
    const [version, iv, body, tag] = sealed.split(".");
    if (version !== SEAL_VERSION || iv === undefined || body === undefined || tag === undefined) {
      throw new Error("sealed code has an unknown format");
    }
    const decipher = createDecipheriv("aes-256-gcm", this.keys.sealKey, Buffer.from(iv, "base64url"));
    decipher.setAAD(Buffer.from(verificationId));
    decipher.setAuthTag(Buffer.from(tag, "base64url"));
    return Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString("utf8");
  }

  private mac(input: string): string {
    return createHmac("sha256", this.keys.hashKey).update(input).digest("hex");
  }
}
