import { redeliveryDelayMs, subjectMatches, type Bus, type BusMessage, type ConsumeOptions, type Consumer, type MessageHandler, type PublishOptions } from "./bus.js";

interface Queued {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  deliveries: number;
  notBefore: number;
  inFlight: boolean;
}

interface MemoryConsumer {
  readonly options: ConsumeOptions;
  readonly handler: MessageHandler;
  inFlight: number;
  stopped: boolean;
  readonly idle: Set<() => void>;
}

export interface MemoryBusOptions {
  /** Subjects stored as work queues until acknowledged; others are broadcast only. */
  readonly workQueueSubjects: readonly string[];
  readonly dedupWindowMs?: number;
}

/**
 * In-process bus with JetStream's semantics where they matter here: msg-id
 * de-duplication, work-queue retention until ack, redelivery with backoff,
 * max deliveries, bounded in-flight per consumer. State lives in memory: `dev`
 * only; production uses JetStream.
 */
export class MemoryBus implements Bus {
  private readonly queue: Queued[] = [];
  private readonly consumers: MemoryConsumer[] = [];
  private readonly listeners = new Set<{ pattern: string; listener: (m: BusMessage) => void }>();
  private readonly seen = new Map<string, number>();
  private wake: { at: number; timer: NodeJS.Timeout } | undefined;
  private closed = false;

  constructor(private readonly options: MemoryBusOptions) {}

  async publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<void> {
    if (this.closed) throw new Error("bus is closed");
    const now = Date.now();
    // Ids are remembered in the order they expire (one window for all): forget from the oldest, stop at the first still in it.
    for (const [id, expiry] of this.seen) {
      if (expiry > now) break;
      this.seen.delete(id);
    }
    if (this.seen.has(options.msgId)) return;
    this.seen.set(options.msgId, now + (this.options.dedupWindowMs ?? 120_000));
    const headers = { ...options.headers };
    for (const { pattern, listener } of this.listeners) {
      if (subjectMatches(pattern, subject)) listener({ subject, data, headers, deliveryCount: 1 });
    }
    if (this.options.workQueueSubjects.some((p) => subjectMatches(p, subject))) {
      this.queue.push({ subject, data, headers, deliveries: 0, notBefore: 0, inFlight: false });
      this.pump();
    }
  }

  async consume(options: ConsumeOptions, handler: MessageHandler): Promise<Consumer> {
    const consumer: MemoryConsumer = { options, handler, inFlight: 0, stopped: false, idle: new Set() };
    this.consumers.push(consumer);
    this.pump();
    return {
      stop: async () => {
        consumer.stopped = true;
        if (consumer.inFlight > 0) await new Promise<void>((resolve) => consumer.idle.add(resolve));
        this.consumers.splice(this.consumers.indexOf(consumer), 1);
      },
    };
  }

  async backlog(pattern: string): Promise<ReadonlyMap<string, number>> {
    const counts = new Map<string, number>();
    for (const { subject } of this.queue) if (subjectMatches(pattern, subject)) counts.set(subject, (counts.get(subject) ?? 0) + 1);
    return counts;
  }

  async subscribe(subject: string, listener: (message: BusMessage) => void): Promise<() => void> {
    const entry = { pattern: subject, listener };
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.wake !== undefined) clearTimeout(this.wake.timer);
    await Promise.all(this.consumers.map((c) => (c.inFlight > 0 ? new Promise<void>((r) => c.idle.add(r)) : undefined)));
  }

  /** Hands ready messages to consumers with free capacity. */
  private pump(): void {
    const now = Date.now();
    let wakeAt = Infinity;
    for (const item of this.queue) {
      if (item.inFlight) continue;
      if (item.notBefore > now) {
        wakeAt = Math.min(wakeAt, item.notBefore);
        continue;
      }
      const consumer = this.consumers.find(
        (c) => !c.stopped && c.inFlight < c.options.maxInFlight && c.options.subjects.some((p) => subjectMatches(p, item.subject)),
      );
      if (consumer !== undefined) void this.deliver(consumer, item);
    }
    // A timer may fire a little before Date.now() reaches the delay it was set for: look again then.
    if (wakeAt !== Infinity && !this.closed) this.schedulePump(wakeAt - now);
  }

  private async deliver(consumer: MemoryConsumer, item: Queued): Promise<void> {
    item.inFlight = true;
    item.deliveries += 1;
    consumer.inFlight += 1;
    let settlement;
    try {
      settlement = await consumer.handler({ subject: item.subject, data: item.data, headers: item.headers, deliveryCount: item.deliveries });
    } catch {
      settlement = { kind: "nak", delayMs: redeliveryDelayMs(item.deliveries) } as const;
    }
    consumer.inFlight -= 1;
    item.inFlight = false;
    if (settlement.kind === "ack" || settlement.kind === "term" || item.deliveries >= consumer.options.maxDeliver) {
      this.queue.splice(this.queue.indexOf(item), 1);
    } else {
      item.notBefore = Date.now() + settlement.delayMs;
    }
    if (consumer.stopped && consumer.inFlight === 0) for (const resolve of consumer.idle) resolve();
    if (!this.closed) this.pump();
  }

  /** One timer for the earliest message that waits out a delay; a later pump re-arms it. */
  private schedulePump(delayMs: number): void {
    const at = Date.now() + delayMs;
    if (this.wake !== undefined && this.wake.at <= at) return;
    if (this.wake !== undefined) clearTimeout(this.wake.timer);
    const timer = setTimeout(() => {
      this.wake = undefined;
      this.pump();
    }, Math.max(1, delayMs));
    this.wake = { at, timer };
  }
}
