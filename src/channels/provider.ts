import type { Channel } from "../domain/channel.js";

/** A rendered message on its way to a provider: the only place a plaintext code exists. */
export interface OutboundMessage {
  readonly attemptId: string;
  readonly channel: Channel;
  readonly to: string;
  readonly sender: string;
  /** SMS text, voice script, or push body. */
  readonly text: string;
  /** Email subject or push title. */
  readonly subject?: string;
  readonly html?: string;
  readonly verificationId: string;
}

export interface SubmitResult {
  readonly providerMessageId: string;
  /** Sandbox providers know delivery at once; real ones report it later in a receipt. */
  readonly delivered: boolean;
}

/** A provider failure, classified: retryable ones are retried with backoff, permanent ones fail the attempt. */
export class ProviderError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly code: string,
  ) {
    super(message);
  }
}

export interface Provider {
  readonly name: string;
  /** Submits one message. `attemptId` is the provider idempotency key where the provider has one. */
  submit(message: OutboundMessage, signal: AbortSignal): Promise<SubmitResult>;
}
