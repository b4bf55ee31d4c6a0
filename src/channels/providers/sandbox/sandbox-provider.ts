import type { DevInbox } from "../../../dev/dev-inbox.js";
import type { OutboundMessage, Provider, SubmitResult } from "../../provider.js";

/** Delivers every message at once to the dev inbox. For `dev` and tests; never a real send. */
export class SandboxProvider implements Provider {
  // The inbox lives in this process: a crash that could repeat a send loses the inbox with it.
  readonly idempotent = true;
  readonly timeoutMs = 1_000;

  constructor(
    readonly name: string,
    private readonly inbox: DevInbox,
  ) {}

  async submit(message: OutboundMessage): Promise<SubmitResult> {
    this.inbox.add({
      channel: message.channel,
      to: message.to,
      subject: message.subject ?? "",
      body: message.text,
      verificationId: message.verificationId,
      deliveredAt: new Date(),
    });
    return { providerMessageId: `sandbox-${message.attemptId}`, delivered: true };
  }
}
