import type { BusMessage, Settlement } from "../../src/bus/bus.js";
import { createAttemptHandler } from "../../src/channels/attempt-handler.js";
import type { OutboundMessage, Provider, SubmitResult } from "../../src/channels/provider.js";
import { SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import type { Route } from "../../src/domain/route.js";
import type { ServiceDeps } from "../../src/service/deps.js";
import type { Db } from "../../src/store/database.js";
import { silentLogger } from "../../src/telemetry/logger.js";

/**
 * A provider that counts every submit per attempt and answers after a short
 * random pause (so calls overlap with whatever races them). It never
 * de-duplicates, so a second call for one attempt would be a second message.
 * `onAccepted` runs when a call is accepted, before the answer returns: a
 * receipt can then race the worker's own record, as with real providers.
 */
export class CountingProvider implements Provider {
  readonly name = "sandbox";
  readonly idempotent = false;
  readonly timeoutMs = 5_000;
  /** attempt id → number of submits. */
  readonly calls = new Map<string, number>();
  /** Submits running right now, per attempt: more than one at once is a double send. */
  private readonly running = new Map<string, number>();
  maxConcurrentPerAttempt = 0;

  constructor(
    private readonly onAccepted: (message: OutboundMessage, providerMessageId: string) => void = () => {},
    private readonly maxPauseMs = 3,
  ) {}

  async submit(message: OutboundMessage): Promise<SubmitResult> {
    this.calls.set(message.attemptId, (this.calls.get(message.attemptId) ?? 0) + 1);
    const running = (this.running.get(message.attemptId) ?? 0) + 1;
    this.running.set(message.attemptId, running);
    this.maxConcurrentPerAttempt = Math.max(this.maxConcurrentPerAttempt, running);
    try {
      await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * (this.maxPauseMs + 1))));
      const providerMessageId = `p-${message.attemptId}`;
      this.onAccepted(message, providerMessageId);
      return { providerMessageId, delivered: false };
    } finally {
      this.running.set(message.attemptId, (this.running.get(message.attemptId) ?? 1) - 1);
    }
  }
}

/** The real attempt handler on the sandbox routes, sending through `provider`. */
export function attemptHandler(
  deps: Pick<ServiceDeps, "db" | "clock" | "protector">,
  provider: Provider,
  options: { routes?: readonly Route[]; maxDeliver?: number } = {},
): (message: BusMessage) => Promise<Settlement> {
  return createAttemptHandler({
    db: deps.db,
    clock: deps.clock,
    protector: deps.protector,
    providers: new Map([[provider.name, provider]]),
    routes: new Map((options.routes ?? SANDBOX_ROUTES).map((r) => [r.id, r])),
    log: silentLogger,
    onOutboxWritten: () => {},
    maxDeliver: options.maxDeliver ?? 5,
  });
}

/** The dispatch message written for an attempt, as the bus would deliver it. */
export async function dispatchMessage(db: Db, attemptId: string, deliveryCount = 1): Promise<BusMessage> {
  const row = await db.selectFrom("outbox").select(["subject", "payload"]).where("msg_id", "=", attemptId).executeTakeFirstOrThrow();
  return { subject: row.subject, data: Buffer.from(row.payload, "base64"), headers: {}, deliveryCount };
}

/**
 * A provider whose calls wait until `release()`: lets a test act while a
 * provider call is in flight. `called` resolves when the first call starts.
 */
export class GatedProvider extends CountingProvider {
  /** Thrown by the next gated call once released (then cleared), instead of accepting. */
  failNext: Error | undefined;
  private open!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.open = resolve));
  private started!: () => void;
  readonly called = new Promise<void>((resolve) => (this.started = resolve));

  override async submit(message: OutboundMessage): Promise<SubmitResult> {
    this.started();
    await this.gate;
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure !== undefined) {
      this.calls.set(message.attemptId, (this.calls.get(message.attemptId) ?? 0) + 1);
      throw failure;
    }
    return super.submit(message);
  }

  release(): void {
    this.open();
  }
}
