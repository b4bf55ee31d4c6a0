import { smsSize, type SmsEncoding } from "./sms-text.js";

/** What a message is rendered from, besides the code. */
export interface RenderOptions {
  readonly brand?: string;
  readonly locale?: string;
  /** Domain for the WICG origin-bound code line "@domain #code". */
  readonly originDomain?: string;
  /** Domain of a page embedded in the origin's page: "@domain #code @embedded". */
  readonly embeddedOriginDomain?: string;
  /** Android SMS Retriever app hash (11 characters). */
  readonly androidAppHash?: string;
}

export interface RenderedSms {
  readonly text: string;
  readonly encoding: SmsEncoding;
  readonly segments: number;
  /** Problems the caller should know about, e.g. a brand shortened to keep one segment. */
  readonly warnings: readonly string[];
}

const MAX_BRAND_LENGTH = 30;

/**
 * The SMS body: "{code} is your {brand} verification code.", then the Android
 * hash line when given, then, as the very last line, "@{origin_domain} #{code}"
 * (WICG origin-bound one-time codes: single spaces, nothing after it; an
 * embedded page's domain as a third part, "@top.example #code @embedded.example").
 * The brand is shortened when the message would not fit one segment.
 */
export function renderSms(code: string, options: RenderOptions): RenderedSms {
  const warnings: string[] = [];
  let brand = options.brand?.trim() ?? "";
  if (brand.length > MAX_BRAND_LENGTH) {
    brand = brand.slice(0, MAX_BRAND_LENGTH);
    warnings.push(`brand shortened to ${MAX_BRAND_LENGTH} characters`);
  }
  let text = composeSms(code, brand, options);
  let size = smsSize(text);
  while (size.segments > 1 && brand.length > 0) {
    brand = brand.slice(0, -1).trimEnd();
    text = composeSms(code, brand, options);
    size = smsSize(text);
    if (size.segments === 1) warnings.push(`brand shortened to "${brand}" to fit one SMS segment`);
  }
  if (size.segments > 1) {
    const retriever = options.androidAppHash ? "; Android's SMS Retriever ignores messages over 140 bytes" : "";
    warnings.push(`the message needs ${size.segments} SMS segments even without a brand${retriever}`);
  }
  return { text, encoding: size.encoding, segments: size.segments, warnings };
}

function composeSms(code: string, brand: string, options: RenderOptions): string {
  const lines = [brand ? `${code} is your ${brand} verification code.` : `${code} is your verification code.`];
  if (options.androidAppHash) lines.push(options.androidAppHash);
  if (options.originDomain) {
    lines.push(`@${options.originDomain} #${code}${options.embeddedOriginDomain ? ` @${options.embeddedOriginDomain}` : ""}`);
  }
  return lines.join("\n");
}

export interface RenderedEmail {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/** Email with the code in the subject, and grouped for reading ("123 456") in the body. */
export function renderEmail(code: string, options: RenderOptions): RenderedEmail {
  const brand = options.brand?.trim() || "your account";
  const grouped = groupDigits(code);
  const subject = `${code} is your ${brand} verification code`;
  const text = `Your ${brand} verification code is ${grouped}.\n\nIt expires in a few minutes. If you did not ask for it, ignore this email.`;
  const html = `<p>Your ${escapeHtml(brand)} verification code is</p><p style="font-size:28px;letter-spacing:4px"><strong>${grouped}</strong></p><p>It expires in a few minutes. If you did not ask for it, ignore this email.</p>`;
  return { subject, text, html };
}

/** "123456" → "123 456"; "12345678" → "1234 5678"; other lengths in threes. */
export function groupDigits(code: string): string {
  const size = code.length % 3 === 0 ? 3 : code.length % 4 === 0 ? 4 : 3;
  return code.match(new RegExp(`.{1,${size}}`, "g"))!.join(" ");
}

/** Voice text: digits spaced so text-to-speech reads them one by one, said twice. */
export function renderVoice(code: string, options: RenderOptions): string {
  const brand = options.brand?.trim() || "your";
  const digits = code.split("").join(", ");
  return `Your ${brand} verification code is: ${digits}. Again, your code is: ${digits}.`;
}

export interface RenderedPush {
  readonly title: string;
  readonly body: string;
}

export function renderPush(code: string, options: RenderOptions): RenderedPush {
  const brand = options.brand?.trim();
  return { title: brand ? `${brand} verification code` : "Verification code", body: `Your code is ${code}` };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
