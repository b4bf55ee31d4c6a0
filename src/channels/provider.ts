import type { Channel } from "../domain/channel.js";
import { scrubProviderCode, scrubProviderText } from "../domain/provider-text.js";

/** A rendered message on its way to a provider: the only place a plaintext code exists. */
export interface OutboundMessage {
  readonly attemptId: string;
  readonly verificationId: string;
  readonly channel: Channel;
  /** The route's name in the provider's API. */
  readonly providerRoute: string;
  readonly to: string;
  readonly sender: string;
  /** SMS text, voice script, push body, or (WhatsApp) the code alone: the template's parameter. */
  readonly text: string;
  /** Email subject or push title. */
  readonly subject?: string;
  readonly html?: string;
  /** The request's BCP 47 locale, when it named one (providers whose templates come per language pick by it). */
  readonly locale?: string;
  /** Voice: the text-to-speech language of `text` (BCP 47 with region, e.g. "nl-NL"). */
  readonly voiceLanguage?: string;
  /** W3C trace context of the send, passed on to providers that accept it. */
  readonly traceparent?: string;
}

export interface SubmitResult {
  readonly providerMessageId: string;
  /** Sandbox providers know delivery at once; real ones report it later in a receipt. */
  readonly delivered: boolean;
}

/** A provider failure, classified: retryable ones are retried with backoff, permanent ones fail the attempt. */
export class ProviderError extends Error {
  override readonly name = "ProviderError";

  /** Short machine-readable cause, e.g. "http_503", "timeout", "smtp_550". */
  readonly code: string;

  constructor(
    message: string,
    readonly retryable: boolean,
    code: string,
    /** The request may have reached the provider (a timeout after sending): it may have been sent. */
    readonly ambiguous = false,
  ) {
    // The message often quotes the provider's answer: scrubbed here, before it can reach a log or the store.
    super(scrubProviderText(message));
    this.code = scrubProviderCode(code);
  }
}

export interface Provider {
  /** The configured provider name (what attempts and receipts refer to). */
  readonly name: string;
  /**
   * The provider drops a repeated submit with the same attempt id (an idempotency key), so
   * a call repeated after a crash cannot send twice. Without it, a call that may have
   * reached the provider is never repeated.
   */
  readonly idempotent: boolean;
  /** How long one submit may take before it is abandoned (and counted as possibly sent). */
  readonly timeoutMs: number;
  /** When receipts are polled, the poller first asks this long after submit; undefined when they are pushed or absent. */
  readonly firstPollAfterMs?: number;
  submit(message: OutboundMessage, signal: AbortSignal): Promise<SubmitResult>;
}
