import { setTimeout as sleep } from "node:timers/promises";
import {
  AckPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
} from "@nats-io/jetstream";
import { connect, headers as natsHeaders, nanos, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { AckedPublisher } from "./acked-publisher.js";
import { redeliveryDelayMs, type Bus, type BusMessage, type ConsumeOptions, type Consumer, type MessageHandler, type PublishOptions } from "./bus.js";
import { DISPATCH_SUBJECTS, EVENTS_SUBJECTS } from "./subjects.js";

/** How long one pull waits for messages before asking again (the client's minimum is 1 s). */
const PULL_EXPIRES_MS = 5_000;
const PULL_RETRY_MS = 1_000;

export interface JetStreamBusOptions {
  readonly servers: string;
  /** Work-queue stream of otp.dispatch.>. */
  readonly dispatchStream?: string;
  /** Limits stream of otp.events.>, kept for `eventsMaxAgeMs`. */
  readonly eventsStream?: string;
  readonly eventsMaxAgeMs?: number;
  /** Copies of each stream kept by a NATS cluster (3 recommended in production; 1 on a single server). */
  readonly streamReplicas?: number;
  /** Window in which a repeated Nats-Msg-Id is dropped. */
  readonly dedupWindowMs?: number;
  /** A message not acknowledged within this time is delivered again. */
  readonly ackWaitMs?: number;
}

/**
 * The Bus on NATS JetStream. Streams are created or updated at connect, so a
 * fresh server and an upgraded one both end up with the configuration here.
 * Publishes carry Nats-Msg-Id (de-duplication); work-queue consumers are durable
 * pull consumers with explicit ack; broadcast subscriptions are core NATS
 * subscriptions on the same subjects.
 */
export class JetStreamBus implements Bus {
  private readonly consumers = new Set<Consumer>();
  private readonly publisher: AckedPublisher;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: Required<JetStreamBusOptions>,
  ) {
    this.publisher = new AckedPublisher(nc);
  }

  static async connect(options: JetStreamBusOptions): Promise<JetStreamBus> {
    const resolved: Required<JetStreamBusOptions> = {
      dispatchStream: "OTP_DISPATCH",
      eventsStream: "OTP_EVENTS",
      eventsMaxAgeMs: 6 * 3_600_000,
      dedupWindowMs: 120_000,
      ackWaitMs: 30_000,
      streamReplicas: 1,
      ...options,
    };
    // Wait for a server that is not up yet, and reconnect forever: while NATS is away the outbox holds what must be published.
    // No async traces: otherwise every publish builds two Error objects (their stacks captured) in case its ack times
    // out — a twentieth of serve's CPU under load (BENCHMARKS.md); a failed publish is logged by who made it.
    const nc = await connect({ servers: resolved.servers, name: "otp-orchestrator", maxReconnectAttempts: -1, reconnectTimeWait: 500, waitOnFirstConnect: true, noAsyncTraces: true });
    try {
      const jsm = await jetstreamManager(nc);
      await ensureStream(jsm, {
        name: resolved.dispatchStream,
        subjects: [DISPATCH_SUBJECTS],
        retention: RetentionPolicy.Workqueue,
        num_replicas: resolved.streamReplicas,
        duplicate_window: nanos(resolved.dedupWindowMs),
      });
      await ensureStream(jsm, {
        name: resolved.eventsStream,
        subjects: [EVENTS_SUBJECTS],
        retention: RetentionPolicy.Limits,
        num_replicas: resolved.streamReplicas,
        max_age: nanos(resolved.eventsMaxAgeMs),
        duplicate_window: nanos(resolved.dedupWindowMs),
      });
      return new JetStreamBus(nc, jetstream(nc), jsm, resolved);
    } catch (error) {
      await nc.close();
      throw error;
    }
  }

  async publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<void> {
    const h = natsHeaders();
    for (const [key, value] of Object.entries(options.headers ?? {})) h.set(key, value);
    h.set("Nats-Msg-Id", options.msgId);
    await this.publisher.publish(subject, data, h);
  }

  async consume(options: ConsumeOptions, handler: MessageHandler): Promise<Consumer> {
    const stream = options.subjects.every((s) => s.startsWith("otp.dispatch.")) ? this.options.dispatchStream : this.options.eventsStream;
    const config = {
      durable_name: options.durable,
      ack_policy: AckPolicy.Explicit,
      // nats-server 2.9 (Debian 12) knows only the single filter; several need 2.10.
      ...(options.subjects.length === 1 ? { filter_subject: options.subjects[0] } : { filter_subjects: [...options.subjects] }),
      max_deliver: options.maxDeliver,
      ack_wait: nanos(this.options.ackWaitMs),
    };
    const exists = await this.jsm.consumers.info(stream, options.durable).then(
      () => true,
      () => false,
    );
    if (exists) await this.jsm.consumers.update(stream, options.durable, config);
    else await this.jsm.consumers.add(stream, config);
    const pull = await this.js.consumers.get(stream, options.durable);
    const inFlight = new Set<Promise<void>>();
    const heartbeatMs = Math.max(100, Math.floor(this.options.ackWaitMs / 3));
    const run = async (m: JsMsg) => {
      // A handler may outlast the ack wait (a slow provider): tell the server it is still being worked on,
      // so it is redelivered only if this process goes away.
      const heartbeat = setInterval(() => m.working(), heartbeatMs);
      let settlement;
      try {
        settlement = await handler(toBusMessage(m.subject, m.data, m.headers, m.info.deliveryCount));
      } catch {
        settlement = { kind: "nak", delayMs: redeliveryDelayMs(m.info.deliveryCount) } as const;
      } finally {
        clearInterval(heartbeat);
      }
      if (settlement.kind === "ack") m.ack();
      else if (settlement.kind === "nak") m.nak(settlement.delayMs);
      else m.term();
    };
    let stopping = false;
    let batch: ConsumerMessages | undefined;
    const idle = new AbortController();
    const loop = (async () => {
      while (!stopping) {
        // Pull only as many messages as can start now: a message waiting in a local buffer would have
        // its ack wait running out, and be redelivered to another worker while this one still holds it.
        while (inFlight.size >= options.maxInFlight) await Promise.race(inFlight);
        if (stopping) break;
        try {
          batch = await pull.fetch({ max_messages: options.maxInFlight - inFlight.size, expires: PULL_EXPIRES_MS });
          for await (const m of batch) {
            const task = run(m).finally(() => inFlight.delete(task));
            inFlight.add(task);
          }
        } catch {
          // NATS away or the consumer being recreated: the client reconnects; try again shortly.
          await sleep(PULL_RETRY_MS, undefined, { signal: idle.signal }).catch(() => undefined);
        }
      }
    })();
    const consumer: Consumer = {
      stop: async () => {
        stopping = true;
        batch?.stop();
        idle.abort();
        await loop;
        await Promise.all(inFlight);
        this.consumers.delete(consumer);
      },
    };
    this.consumers.add(consumer);
    return consumer;
  }

  /** From the dispatch stream (a work queue: what is stored is not yet acknowledged). */
  async backlog(pattern: string): Promise<ReadonlyMap<string, number>> {
    const info = await this.jsm.streams.info(this.options.dispatchStream, { subjects_filter: pattern });
    return new Map(Object.entries(info.state.subjects ?? {}));
  }

  async subscribe(subject: string, listener: (message: BusMessage) => void): Promise<() => void> {
    const subscription = this.nc.subscribe(subject, {
      callback: (error, m) => {
        if (error === null) listener(toBusMessage(m.subject, m.data, m.headers, 1));
      },
    });
    return () => subscription.unsubscribe();
  }

  async close(): Promise<void> {
    await Promise.all([...this.consumers].map((c) => c.stop()));
    await this.nc.drain();
    this.publisher.closed();
  }
}

async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
  } catch {
    await jsm.streams.add(config);
    return;
  }
  await jsm.streams.update(config.name, config);
}

function toBusMessage(subject: string, data: Uint8Array, h: MsgHdrs | undefined, deliveryCount: number): BusMessage {
  const headers: Record<string, string> = {};
  for (const key of h?.keys() ?? []) if (!key.startsWith("Nats-")) headers[key] = h!.get(key);
  return { subject, data, headers, deliveryCount };
}
