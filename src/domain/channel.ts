/** The channels a code can travel on; the default policy's fallback order is its own (see plan.ts). */
export const CHANNELS = ["sms", "email", "voice", "push", "whatsapp"] as const;

export type Channel = (typeof CHANNELS)[number];

export function isChannel(value: string): value is Channel {
  return (CHANNELS as readonly string[]).includes(value);
}

/**
 * Channels addressed by a phone number: their destination has a country (prices, geo permissions, spend caps
 * and velocity per country) and a number prefix (conversion, SMS-pumping blocks).
 */
export function isPhoneChannel(channel: Channel): boolean {
  return channel === "sms" || channel === "voice" || channel === "whatsapp";
}
