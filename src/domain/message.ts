import { SHIPPED_CATALOGUE, type LocalizedTexts } from "./messages/catalogue.js";
import { fillText } from "./messages/message-texts.js";
import { smsSize, type SmsEncoding } from "./sms-text.js";
import { DEFAULT_TTL_MS } from "./verification.js";

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

/** Minutes a code lives when the renderer is not told: the default TTL. */
const DEFAULT_MINUTES = Math.round(DEFAULT_TTL_MS / 60_000);

/** The shipped texts of the request's locale: what renders when no operator replaced any. */
const shippedTexts = (options: RenderOptions): LocalizedTexts => SHIPPED_CATALOGUE.texts(options.locale);

/**
 * The SMS body: the language's SMS text ("{code} is your {brand} verification code."), then the Android hash line
 * when given, then, as the very last line, "@{origin_domain} #{code}" (WICG origin-bound one-time codes: single
 * spaces, nothing after it; an embedded page's domain as a third part, "@top.example #code @embedded.example").
 * The brand is shortened when the message would not fit one segment.
 */
export function renderSms(code: string, options: RenderOptions, localized = shippedTexts(options), minutes = DEFAULT_MINUTES): RenderedSms {
  const warnings: string[] = [];
  let brand = options.brand?.trim() ?? "";
  if (brand.length > MAX_BRAND_LENGTH) {
    brand = brand.slice(0, MAX_BRAND_LENGTH);
    warnings.push(`brand shortened to ${MAX_BRAND_LENGTH} characters`);
  }
  const compose = (b: string) => composeSms(localized.texts.sms, { code, brand: b, minutes }, options);
  let text = compose(brand);
  let size = smsSize(text);
  while (size.segments > 1 && brand.length > 0) {
    brand = brand.slice(0, -1).trimEnd();
    text = compose(brand);
    size = smsSize(text);
    if (size.segments === 1) warnings.push(brand ? `brand shortened to "${brand}" to fit one SMS segment` : "brand left out to fit one SMS segment");
  }
  if (size.segments > 1) {
    const retriever = options.androidAppHash ? "; Android's SMS Retriever ignores messages over 140 bytes" : "";
    warnings.push(`the message needs ${size.segments} SMS segments even without a brand${retriever}`);
  }
  return { text, encoding: size.encoding, segments: size.segments, warnings };
}

function composeSms(template: string, values: { code: string; brand: string; minutes: number }, options: RenderOptions): string {
  const lines = [fillText(template, values)];
  if (options.androidAppHash) lines.push(options.androidAppHash);
  if (options.originDomain) {
    lines.push(`@${options.originDomain} #${values.code}${options.embeddedOriginDomain ? ` @${options.embeddedOriginDomain}` : ""}`);
  }
  return lines.join("\n");
}

export interface RenderedEmail {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/**
 * A multipart email: the code in the subject; in the body grouped for reading ("123 456"), in the HTML part large,
 * in monospace and left-to-right whatever the language's direction, on a single-column table layout that mail
 * clients without CSS support render alike.
 */
export function renderEmail(code: string, options: RenderOptions, localized = shippedTexts(options), minutes = DEFAULT_MINUTES): RenderedEmail {
  const { texts, locale } = localized;
  const brand = options.brand?.trim() ?? "";
  const grouped = groupDigits(code);
  const subject = fillText(texts.emailSubject, { code, brand, minutes });
  const footer = fillText(texts.emailFooter, { code, brand, minutes });
  const text = `${fillText(texts.emailText, { code: grouped, brand, minutes })}\n\n${footer}`;
  // The sentence around the code, split where the code goes: the HTML sets the code apart.
  const [before = "", after = ""] = fillText(texts.emailText, { code: "\u0000", brand, minutes }).split("\u0000");
  const dir = texts.direction ?? "ltr";
  const paragraph = (content: string, style = "margin:0 0 16px;") => `<p style="${style}">${escapeHtml(content)}</p>`;
  const html = [
    "<!DOCTYPE html>",
    `<html lang="${escapeHtml(locale)}" dir="${dir}">`,
    `<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light"><title>${escapeHtml(subject)}</title></head>`,
    '<body style="margin:0;padding:0;background:#f4f5f7;">',
    '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background:#f4f5f7;"><tr><td align="center" style="padding:24px 12px;">',
    '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="max-width:480px;background:#ffffff;border-radius:8px;border:1px solid #e1e4e8;">',
    `<tr><td dir="${dir}" style="padding:32px 28px;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:16px;line-height:24px;color:#1f2328;text-align:${dir === "rtl" ? "right" : "left"};">`,
    before.trim() ? paragraph(before.trim()) : "",
    `<p dir="ltr" style="margin:0 0 16px;text-align:center;font-family:Menlo,Consolas,'DejaVu Sans Mono',monospace;font-size:32px;line-height:40px;letter-spacing:6px;font-weight:bold;color:#1f2328;">${escapeHtml(grouped)}</p>`,
    // What follows the code, unless it is only the sentence's full stop.
    /[\p{L}\p{N}]/u.test(after) ? paragraph(after.trim()) : "",
    paragraph(footer, "margin:0;font-size:13px;line-height:20px;color:#57606a;"),
    "</td></tr></table>",
    "</td></tr></table>",
    "</body></html>",
  ]
    .filter((line) => line !== "")
    .join("\n");
  return { subject, text, html };
}

/** "123456" → "123 456"; "12345678" → "1234 5678"; other lengths in threes. */
export function groupDigits(code: string): string {
  const size = code.length % 3 === 0 ? 3 : code.length % 4 === 0 ? 4 : 3;
  return code.match(new RegExp(`.{1,${size}}`, "g"))!.join(" ");
}

/** Voice text in the language's words: digits spaced so text-to-speech reads them one by one, said twice. */
export function renderVoice(code: string, options: RenderOptions, localized = shippedTexts(options), minutes = DEFAULT_MINUTES): string {
  return fillText(localized.texts.voice, { code: code.split("").join(", "), brand: options.brand?.trim() ?? "", minutes });
}

export interface RenderedPush {
  readonly title: string;
  readonly body: string;
}

export function renderPush(code: string, options: RenderOptions, localized = shippedTexts(options), minutes = DEFAULT_MINUTES): RenderedPush {
  const values = { code, brand: options.brand?.trim() ?? "", minutes };
  return { title: fillText(localized.texts.pushTitle, values), body: fillText(localized.texts.pushBody, values) };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
