/** The channels a code can travel on, in the default fallback order. */
export const CHANNELS = ["sms", "email", "voice", "push"] as const;

export type Channel = (typeof CHANNELS)[number];

export function isChannel(value: string): value is Channel {
  return (CHANNELS as readonly string[]).includes(value);
}
