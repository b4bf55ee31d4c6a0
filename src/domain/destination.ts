import { domainToASCII } from "node:url";
import { parsePhoneNumberFromString, type NumberType, type PhoneNumber } from "libphonenumber-js/max";
import type { Channel } from "./channel.js";

/** Where a code may be sent; absent fields mean the channel cannot be used. */
export interface Destination {
  readonly phone?: string;
  readonly email?: string;
  readonly pushToken?: string;
  readonly voicePhone?: string;
}

const E164 = /^\+[1-9]\d{6,14}$/;
// Deliberately simple: one @, a dot in the domain, and nothing that could make it a list or a display name
// ("a@x.org,b@y.org", "a@x.org;b@y.org", "Name <a@x.org>"). Deliverability is the provider's job.
const EMAIL = /^[^\s@,;<>()[\]\\"]{1,64}@[^\s@,;<>()[\]\\"]+\.[^\s@,;<>()[\]\\"]{2,}$/;

export function isE164(value: string): boolean {
  if (!E164.test(value)) return false;
  const known = parsed(value);
  return (known.valid ??= known.number?.isValid() === true);
}

/** A number as parsed with the full metadata, and the answers asked of it so far. */
interface ParsedPhone {
  readonly phone: string;
  readonly number: PhoneNumber | undefined;
  valid?: boolean;
  type?: NumberType | "unknown";
}

/**
 * The last number parsed. One send asks about the same number several times in a row (valid? which country? which
 * kind?) from validation and planning, and parsing it with the full metadata cost more of `serve`'s CPU than all
 * of planning (BENCHMARKS.md). One entry: nothing accumulates, and a call about another number just parses it.
 */
let lastParsed: ParsedPhone | undefined;

function parsed(phone: string): ParsedPhone {
  if (lastParsed?.phone !== phone) lastParsed = { phone, number: parsePhoneNumberFromString(phone) };
  return lastParsed;
}

export function isEmail(value: string): boolean {
  return value.length <= 254 && EMAIL.test(value);
}

/**
 * One spelling per mailbox, so limits count mailboxes, not spellings: lower
 * case, and an internationalised domain in its ASCII (IDNA) form. Undefined
 * when the domain is not a valid one.
 */
export function normalizeEmail(email: string): string | undefined {
  const at = email.lastIndexOf("@");
  const domain = domainToASCII(email.slice(at + 1).toLowerCase());
  if (at < 1 || domain === "") return undefined;
  const normalized = `${email.slice(0, at).toLowerCase()}@${domain}`;
  return isEmail(normalized) ? normalized : undefined;
}

/** ISO 3166-1 alpha-2 country of an E.164 number, when it can be told. */
export function phoneCountry(phone: string): string | undefined {
  return parsed(phone).number?.country;
}

/**
 * The first `digits` digits of an E.164 number (country code included), with its `+`: the range conversion and
 * SMS-pumping defence count by. Short enough to cover many subscribers, long enough to single out a carrier's block.
 */
export function numberPrefix(phone: string, digits: number): string {
  return phone.slice(0, 1 + digits);
}

const REFUSED_NUMBER_TYPES: Readonly<Record<string, string>> = {
  PREMIUM_RATE: "premium-rate",
  SHARED_COST: "shared-cost",
  VOIP: "VoIP",
};

/**
 * Why a phone number must not get an SMS or call, if it must not: premium-rate and
 * shared-cost numbers earn their owner money per message or call (the SMS-pumping
 * fraud), VoIP numbers are throwaway. Told by libphonenumber's full metadata.
 */
export function refusedNumberKind(phone: string): string | undefined {
  const known = parsed(phone);
  known.type ??= known.number?.getType() ?? "unknown";
  return REFUSED_NUMBER_TYPES[known.type];
}

/** The address used on a channel, or undefined when the destination has none for it. */
export function addressFor(destination: Destination, channel: Channel): string | undefined {
  switch (channel) {
    case "sms":
    case "whatsapp":
      return destination.phone || undefined;
    case "voice":
      return destination.voicePhone || destination.phone || undefined;
    case "email":
      return destination.email?.toLowerCase() || undefined;
    case "push":
      return destination.pushToken || undefined;
  }
}

/** Hides most of an address for logs and estimates: "+316*****678", "j***@example.com". */
export function maskAddress(address: string): string {
  // By code point: cutting a surrogate pair in half leaves text that is not valid Unicode (nor storable JSON).
  const chars = Array.from(address);
  const at = chars.indexOf("@");
  if (at > 0) return `${chars[0]}***${chars.slice(at).join("")}`;
  if (chars.length <= 6) return "*".repeat(chars.length);
  return `${chars.slice(0, 4).join("")}${"*".repeat(chars.length - 7)}${chars.slice(-3).join("")}`;
}
