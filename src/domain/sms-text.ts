/**
 * SMS encoding and segment arithmetic (GSM 03.38).
 * An SMS carries 140 bytes: 160 GSM-7 septets or 70 UCS-2 characters in one
 * part; a multi-part message loses room to its concatenation header.
 */

export type SmsEncoding = "GSM7" | "UCS2";

const GSM7_BASIC =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION = "^{}\\[~]|€\f";

const basic = new Set(GSM7_BASIC);
const extension = new Set(GSM7_EXTENSION);

export interface SmsSize {
  readonly encoding: SmsEncoding;
  /** Septets (GSM-7) or UTF-16 code units (UCS-2). */
  readonly units: number;
  readonly segments: number;
}

export function smsSize(text: string): SmsSize {
  let septets = 0;
  for (const ch of text) {
    if (basic.has(ch)) septets += 1;
    else if (extension.has(ch)) septets += 2;
    else return ucs2Size(text);
  }
  return { encoding: "GSM7", units: septets, segments: segmentsFor(septets, 160, 153) };
}

function ucs2Size(text: string): SmsSize {
  return { encoding: "UCS2", units: text.length, segments: segmentsFor(text.length, 70, 67) };
}

function segmentsFor(units: number, single: number, perPart: number): number {
  if (units <= single) return 1;
  return Math.ceil(units / perPart);
}
