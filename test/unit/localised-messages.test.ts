import { describe, expect, it } from "vitest";
import { parseConfigFile } from "../../src/config/config-file.js";
import { renderEmail, renderPush, renderSms, renderVoice } from "../../src/domain/message.js";
import { MessageCatalogue, SHIPPED_CATALOGUE } from "../../src/domain/messages/catalogue.js";
import { fillText, TEXT_KEYS, textProblem } from "../../src/domain/messages/message-texts.js";
import { SHIPPED_TEXTS } from "../../src/domain/messages/shipped-texts.js";

const LANGUAGES = ["en", "es", "fr", "de", "pt", "it", "nl", "pl", "tr", "ar"];
const BRAND_30 = "Northwind Traders Online Shops";

describe("shipped texts", () => {
  it("ship at least the ten languages, each text valid: known placeholders, balanced [ ], the code where it is needed", () => {
    expect(Object.keys(SHIPPED_TEXTS)).toEqual(expect.arrayContaining(LANGUAGES));
    for (const [locale, texts] of Object.entries(SHIPPED_TEXTS)) {
      for (const key of Object.values(TEXT_KEYS)) expect(textProblem(key, texts[key]), `${locale}.${key}`).toBeUndefined();
    }
  });

  it.each(LANGUAGES)("%s: the SMS fits one segment with a 30-character brand, the Android hash and the WICG line, else shortens the brand and says so", (locale) => {
    const brand = BRAND_30;
    expect(brand).toHaveLength(30);
    const sms = renderSms("482139", { brand, locale, originDomain: "accounts.example.com", androidAppHash: "FA+9qCX9VSu" });
    expect(sms.segments).toBe(1);
    expect(sms.text.split("\n").at(-1)).toBe("@accounts.example.com #482139");
    expect(sms.text.split("\n").at(-2)).toBe("FA+9qCX9VSu");
    expect(sms.text).toContain("482139");
    if (!sms.text.includes(brand)) expect(sms.warnings.join(" ")).toMatch(/brand (shortened|left out)/);
    else expect(sms.warnings).toEqual([]);
    // Without a brand or extra lines every language fits with room to spare.
    expect(renderSms("48213907", { locale }).segments).toBe(1);
  });

  it("uses GSM-7 where the language allows it and UCS-2 where it does not", () => {
    const encoding = (locale: string) => renderSms("482139", { brand: "Acme", locale }).encoding;
    expect(["en", "fr", "de", "it", "nl", "tr"].map(encoding)).toEqual(["GSM7", "GSM7", "GSM7", "GSM7", "GSM7", "GSM7"]);
    expect(["es", "pt", "pl", "ar"].map(encoding)).toEqual(["UCS2", "UCS2", "UCS2", "UCS2"]);
  });

  it("keeps the code's digits together and the origin line left-to-right in Arabic", () => {
    const sms = renderSms("482139", { brand: "Acme", locale: "ar", originDomain: "example.com" });
    const [words, origin] = sms.text.split("\n");
    expect(words).toBe("482139 هو رمز التحقق من Acme.");
    expect(origin).toBe("@example.com #482139");
    const email = renderEmail("482139", { brand: "Acme", locale: "ar-EG" });
    expect(email.html).toContain('<html lang="ar" dir="rtl">');
    expect(email.html).toMatch(/<p dir="ltr"[^>]*>482 139<\/p>/);
  });
});

describe("choosing the language", () => {
  it("matches the request's locale to the closest shipped language, English when none", () => {
    expect(SHIPPED_CATALOGUE.texts("nl-BE").locale).toBe("nl");
    expect(SHIPPED_CATALOGUE.texts("pt-BR").locale).toBe("pt");
    expect(SHIPPED_CATALOGUE.texts("ja").locale).toBe("en");
    expect(SHIPPED_CATALOGUE.texts(undefined).locale).toBe("en");
    expect(SHIPPED_CATALOGUE.texts("de-1996-1996").locale).toBe("en");
  });

  it("speaks the request's regional voice when it asks for one of the language, the language's default otherwise", () => {
    expect(SHIPPED_CATALOGUE.texts("pt-PT").voiceLanguage).toBe("pt-PT");
    expect(SHIPPED_CATALOGUE.texts("pt").voiceLanguage).toBe("pt-BR");
    expect(SHIPPED_CATALOGUE.texts("fr-CA").voiceLanguage).toBe("fr-CA");
    expect(SHIPPED_CATALOGUE.texts("ja-JP").voiceLanguage).toBe("en-US");
  });

  it("lets the operator replace texts for everyone and per caller, and add a locale of its own", () => {
    const catalogue = new MessageCatalogue(
      new Map([["nl", { sms: "{code} is uw code[ voor {brand}]." }]]),
      new Map([["shop", new Map([["fr-CA", { pushBody: "Votre code : {code}" }]])]]),
    );
    expect(renderSms("482139", { brand: "Acme" }, catalogue.texts("nl-NL")).text).toBe("482139 is uw code voor Acme.");
    // What a replacement leaves out stays the shipped language's.
    expect(renderVoice("12", {}, catalogue.texts("nl"))).toBe("Je verificatiecode is: 1, 2. Nogmaals, je code is: 1, 2.");
    expect(catalogue.texts("fr-CA", "shop")).toMatchObject({ locale: "fr-CA", texts: { pushBody: "Votre code : {code}", pushTitle: "Code de vérification[ {brand}]" } });
    expect(catalogue.texts("fr-CA", "other").locale).toBe("fr");
  });
});

describe("filling a text", () => {
  it("keeps [ ] parts only with a brand, and starts with a capital when the text began with one it dropped", () => {
    expect(fillText("Your[ {brand}] code is {code}.", { code: "12", brand: "Acme", minutes: 5 })).toBe("Your Acme code is 12.");
    expect(fillText("Your[ {brand}] code is {code}.", { code: "12", brand: "", minutes: 5 })).toBe("Your code is 12.");
    expect(renderPush("12", {}).title).toBe("Verification code");
    expect(renderPush("12", { brand: "eBay" }).title).toBe("eBay verification code");
  });

  it("says how long the code lives in the email, in the language", () => {
    expect(renderEmail("482139", { locale: "de" }, SHIPPED_CATALOGUE.texts("de"), 7).text).toBe("Ihr Bestätigungscode lautet 482 139.\n\nEr läuft in 7 Minuten ab. Wenn Sie ihn nicht angefordert haben, ignorieren Sie diese E-Mail.");
    expect(renderEmail("482139", {}).subject).toBe("482139 is your verification code");
  });

  it("refuses operator texts that cannot work", () => {
    expect(textProblem("sms", "Your code")).toBe("must contain {code} (outside [ ])");
    expect(textProblem("sms", "[{code}] is yours")).toBe("must contain {code} (outside [ ])");
    expect(textProblem("sms", "{code} for {user}")).toBe("unknown placeholder {user} (use {code}, {brand}, {minutes})");
    expect(textProblem("sms", "{code} [for {brand}")).toMatch(/unbalanced/);
    expect(textProblem("pushTitle", "Sign-in code")).toBeUndefined();
  });
});

describe("messages in the configuration file", () => {
  const parse = (messages: unknown, callerMessages?: unknown) =>
    parseConfigFile({ messages, ...(callerMessages ? { callers: { shop: { token_sha256: "a".repeat(64), messages: callerMessages } } } : {}) }, "/");

  it("reads texts by locale for everyone and per caller, in canonical tags", () => {
    const file = parse({ "pt-br": { sms: "Seu código {code}", push_title: "Código" } }, { nl: { email_footer: "Geldig voor {minutes} minuten." } });
    expect(file.messages).toEqual(new Map([["pt-BR", { sms: "Seu código {code}", pushTitle: "Código" }]]));
    expect(file.callers![0]!.messages).toEqual(new Map([["nl", { emailFooter: "Geldig voor {minutes} minuten." }]]));
  });

  it("refuses, naming the key: unknown keys, bad tags, bad placeholders, an SMS over one segment", () => {
    expect(() => parse({ nl: { sms_text: "{code}" } })).toThrow("messages.nl.sms_text: unknown key (expected sms, email_subject, email_text, email_footer, voice, push_title, push_body)");
    expect(() => parse({ "not a tag": { sms: "{code}" } })).toThrow("messages.not a tag: not a BCP 47 language tag");
    expect(() => parse({ nl: { voice: "Uw code" } })).toThrow("messages.nl.voice: must contain {code}");
    expect(() => parse({ nl: { sms: `{code} ${"x".repeat(160)}` } })).toThrow("messages.nl.sms: does not fit one SMS segment even without a brand");
    expect(() => parse({}, { nl: { sms: "{code} {naam}" } })).toThrow("callers.shop.messages.nl.sms: unknown placeholder {naam}");
  });
});
