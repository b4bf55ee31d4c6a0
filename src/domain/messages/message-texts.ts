/** The words of every message in one language; see `fillText` for the placeholders. */
export interface MessageTexts {
  readonly sms: string;
  readonly emailSubject: string;
  /** The email's sentence carrying the code; the HTML part sets the code apart, large. */
  readonly emailText: string;
  readonly emailFooter: string;
  /** Said by the call: `{code}` becomes the digits one by one. */
  readonly voice: string;
  readonly pushTitle: string;
  readonly pushBody: string;
  /** BCP 47 language (with region) of the call's text-to-speech. */
  readonly voiceLanguage: string;
  /** Right-to-left script: the email is laid out for it. */
  readonly direction?: "rtl";
}

/** The keys an operator may replace, as the configuration file spells them. */
export const TEXT_KEYS = {
  sms: "sms",
  email_subject: "emailSubject",
  email_text: "emailText",
  email_footer: "emailFooter",
  voice: "voice",
  push_title: "pushTitle",
  push_body: "pushBody",
} as const satisfies Record<string, keyof MessageTexts>;

export type TextKey = (typeof TEXT_KEYS)[keyof typeof TEXT_KEYS];

/** Texts that are useless without the code in them. */
const NEEDS_CODE: readonly TextKey[] = ["sms", "emailSubject", "emailText", "voice", "pushBody"];

export interface TextValues {
  readonly code: string;
  /** Empty: the `[…]` parts are left out. */
  readonly brand: string;
  readonly minutes: number;
}

const PLACEHOLDER = /\{(code|brand|minutes)\}/g;

/**
 * `{code}`, `{brand}` and `{minutes}` filled in; a `[…]` part kept only with a brand ("Your[ {brand}] code" →
 * "Your Acme code" / "Your code"). A text that starts with such a part and loses it starts with a capital.
 */
export function fillText(template: string, values: TextValues): string {
  const withBrand = values.brand !== "";
  const kept = template.replace(/\[([^\]]*)\]/g, (_, part: string) => (withBrand ? part : ""));
  const filled = kept.replace(PLACEHOLDER, (_, name: "code" | "brand" | "minutes") => String(values[name]));
  return !withBrand && template.startsWith("[") ? filled.charAt(0).toLocaleUpperCase() + filled.slice(1) : filled;
}

/** What is wrong with an operator's text, or undefined: unknown placeholders, unbalanced brackets, no code where one is needed. */
export function textProblem(key: TextKey, template: string): string | undefined {
  const unknown = /\{(?!code\}|brand\}|minutes\})[^}]*\}/.exec(template);
  if (unknown) return `unknown placeholder ${unknown[0]} (use {code}, {brand}, {minutes})`;
  if (!/^[^[\]]*(\[[^[\]]*\][^[\]]*)*$/.test(template)) return "unbalanced [ ] (a [...] part appears only with a brand)";
  const outsideBrackets = template.replace(/\[[^\]]*\]/g, "");
  if (NEEDS_CODE.includes(key) && !outsideBrackets.includes("{code}")) return "must contain {code} (outside [ ])";
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(template)) return "control characters are not allowed";
  return undefined;
}
