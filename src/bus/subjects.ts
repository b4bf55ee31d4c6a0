import type { Channel } from "../domain/channel.js";

/** Work-queue subject of one channel's attempts. */
export function dispatchSubject(channel: Channel): string {
  return `otp.dispatch.${channel}`;
}

/** Event subject of one verification. */
export function eventsSubject(verificationId: string): string {
  return `otp.events.${verificationId}`;
}

export const DISPATCH_SUBJECTS = "otp.dispatch.>";
export const EVENTS_SUBJECTS = "otp.events.>";
