/**
 * Text from a provider (an error body, a receipt's reason) is not trusted: a
 * provider that echoes the request would put the live code and the full
 * address into logs, the database, the bus and API answers. What is kept is
 * one short line with every run of four or more digits (codes, phone numbers,
 * with or without separators) and every email address cut out, and any text
 * the caller names (the code, the address) removed wherever it appears.
 */
export function scrubProviderText(text: string, secrets: readonly string[] = []): string {
  let clean = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ");
  for (const secret of secrets) if (secret.length >= 3) clean = clean.split(secret).join("…");
  clean = clean
    .replace(/[^\s@<>"'(),;:]+@[^\s@<>"'(),;:]+/g, "…@…")
    .replace(/\+?\d(?:[\s.\-/]?\d){3,}/g, "…")
    .replace(/\s+/g, " ")
    .trim();
  return clean.length > MAX_REASON_LENGTH ? `${clean.slice(0, MAX_REASON_LENGTH - 1)}…` : clean;
}

/** A provider's error code, as an identifier: letters, digits and `_.:-`, at most 40 characters; else "provider_error". */
export function scrubProviderCode(code: string): string {
  return /^[A-Za-z0-9_.:-]{1,40}$/.test(code) ? code : "provider_error";
}

const MAX_REASON_LENGTH = 120;
