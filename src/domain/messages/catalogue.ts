import { negotiateLocale } from "../locale.js";
import type { MessageTexts, TextKey } from "./message-texts.js";
import { SHIPPED_TEXTS } from "./shipped-texts.js";

/** An operator's replacements, by BCP 47 locale: some or all of a language's texts. */
export type TextOverrides = ReadonlyMap<string, Readonly<Partial<Record<TextKey, string>>>>;

/** The texts a message is rendered with, and the language they are in. */
export interface LocalizedTexts {
  /** The BCP 47 tag chosen (the email's `lang`). */
  readonly locale: string;
  readonly texts: MessageTexts;
  /** The call's text-to-speech language: the request's own locale when it is this language with a region ("pt-PT"). */
  readonly voiceLanguage: string;
}

const SHIPPED_LOCALES = ["en", ...Object.keys(SHIPPED_TEXTS).filter((l) => l !== "en")] as [string, ...string[]];
const MAX_CACHED = 1_000;

/**
 * The shipped texts with the operator's replacements: the configuration file's `messages` for everyone, a caller's
 * own `messages` over those. A request's locale picks the closest language any of them has (`nl-BE` → `nl`,
 * `fr-CA` → `fr-CA` when an operator wrote one, else `fr`); a language only an operator has takes what it does not
 * replace from the closest shipped one. English when nothing matches.
 */
export class MessageCatalogue {
  private readonly cache = new Map<string, LocalizedTexts>();

  constructor(
    private readonly everyone: TextOverrides = new Map(),
    private readonly byCaller: ReadonlyMap<string, TextOverrides> = new Map(),
  ) {}

  texts(requested: string | undefined, callerId?: string): LocalizedTexts {
    const key = `${callerId ?? ""}\u0000${requested ?? ""}`;
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    const own = callerId !== undefined ? this.byCaller.get(callerId) : undefined;
    const locales = new Set([...SHIPPED_LOCALES, ...this.everyone.keys(), ...(own?.keys() ?? [])]);
    const locale = negotiateLocale(requested, [...locales] as [string, ...string[]]);
    const shipped = SHIPPED_TEXTS[locale] ?? SHIPPED_TEXTS[negotiateLocale(locale, SHIPPED_LOCALES)]!;
    const texts: MessageTexts = { ...shipped, ...this.everyone.get(locale), ...own?.get(locale) };
    const localized = { locale, texts, voiceLanguage: voiceLanguage(requested, locale, texts.voiceLanguage) };
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(key, localized);
    return localized;
  }
}

/** The shipped catalogue alone (English by default): what renders when no configuration replaces a text. */
export const SHIPPED_CATALOGUE = new MessageCatalogue();

function voiceLanguage(requested: string | undefined, locale: string, fallback: string): string {
  if (requested === undefined) return fallback;
  try {
    const asked = new Intl.Locale(requested);
    return asked.region !== undefined && asked.language === new Intl.Locale(locale).language ? `${asked.language}-${asked.region}` : fallback;
  } catch {
    return fallback;
  }
}
