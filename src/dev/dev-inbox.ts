import type { Channel } from "../domain/channel.js";

export interface InboxMessage {
  readonly channel: Channel;
  readonly to: string;
  readonly subject: string;
  readonly body: string;
  readonly verificationId: string;
  readonly deliveredAt: Date;
}

/**
 * Messages the sandbox providers "delivered", in memory only: they hold codes,
 * so they are never written to the database. Bounded, oldest dropped first.
 */
export class DevInbox {
  private readonly messages: InboxMessage[] = [];

  constructor(private readonly capacity = 1_000) {}

  add(message: InboxMessage): void {
    this.messages.push(message);
    if (this.messages.length > this.capacity) this.messages.shift();
  }

  /** Newest first, optionally only those sent to `to`. */
  list(to?: string): InboxMessage[] {
    const all = to ? this.messages.filter((m) => m.to === to) : this.messages;
    return [...all].reverse();
  }
}
