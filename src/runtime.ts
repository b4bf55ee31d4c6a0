import type { Bus } from "./bus/bus.js";
import { JetStreamBus } from "./bus/jetstream-bus.js";
import { MemoryBus } from "./bus/memory-bus.js";
import { DISPATCH_SUBJECTS } from "./bus/subjects.js";
import { startChannelWorkers } from "./channels/channel-worker.js";
import { createProviders } from "./channels/providers/registry.js";
import type { Config } from "./config/config.js";
import { loadOrCreateDevKeys } from "./config/dev-keys.js";
import { DevInbox } from "./dev/dev-inbox.js";
import { OutboxPublisher } from "./dispatch/outbox-publisher.js";
import { relayOutboxBatch } from "./dispatch/outbox-relay.js";
import { CodeProtector } from "./domain/code-protector.js";
import { cryptoRandom, systemClock, uuidIds, type Clock, type IdGenerator, type RandomSource } from "./domain/ports.js";
import type { DeliveryReceipt } from "./domain/receipt.js";
import { applyReceipt } from "./service/attempt-lifecycle.js";
import { databaseProbe, waitForDatabase, type DatabaseProbe } from "./store/availability.js";
import { migrateToLatest, openDatabase, type Db } from "./store/database.js";
import { republishQueuedDispatches, type OnOutboxWritten } from "./store/repositories/outbox.js";
import { AnotherInstanceError, holdSingleInstanceLock } from "./store/single-instance-lock.js";
import { jsonLogger, type Logger } from "./telemetry/logger.js";
import { enableMetrics } from "./telemetry/sdk.js";
import { PeriodicLoop } from "./util/periodic-loop.js";

export interface AppOptions {
  readonly clock?: Clock;
  readonly random?: RandomSource;
  readonly ids?: IdGenerator;
  readonly log?: Logger;
}

/** What every long-running role shares: keys, database, bus, and the outbox relay that feeds the bus. */
export interface Runtime {
  readonly log: Logger;
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly ids: IdGenerator;
  readonly protector: CodeProtector;
  readonly db: Db;
  readonly bus: Bus;
  /** Whether the database answers now: health and readiness follow it. */
  readonly probe: DatabaseProbe;
  /** Publishes a commit's outbox messages right after it (`publishCommitted`); a relay publishes what it misses. */
  readonly publisher: OutboxPublisher;
  close(): Promise<void>;
}

const RELAY_BATCH = 256;
export const WORKER_MAX_DELIVER = 5;

/**
 * Opens the runtime: JetStream when a NATS URL is configured, else the
 * in-process bus. Waits, retrying, for a database (and NATS) that is not up yet. Relays run in every role that writes events (serve and
 * worker); with several replicas they share rows with SKIP LOCKED.
 */
export async function openRuntime(config: Config, options: AppOptions = {}): Promise<Runtime> {
  const log = options.log ?? jsonLogger(config.role, config.logLevel);
  enableMetrics();
  const clock = options.clock ?? systemClock;
  const random = options.random ?? cryptoRandom;
  const keys =
    config.codeHashKey && config.codeSealKey
      ? { hashKey: config.codeHashKey, sealKey: config.codeSealKey }
      : await loadOrCreateDevKeys(config.dataDir);
  const db = await openDatabase(config.database, log);
  const probe = databaseProbe(config.database, db, log);
  await waitForDatabase(probe, log);
  if (config.migrateOnStart) await migrateToLatest(db);
  const singleInstance = config.natsUrl ? undefined : await startInProcessBusRun(config, db, log);
  if (config.natsUrl) log.info("connecting to NATS (waiting for it if it is not up yet)");
  const bus: Bus = config.natsUrl
    ? await JetStreamBus.connect({ servers: config.natsUrl, ackWaitMs: config.workerAckWaitMs, streamReplicas: config.natsStreamReplicas })
    : new MemoryBus({ workQueueSubjects: [DISPATCH_SUBJECTS] });
  const publisher = new OutboxPublisher(db, bus, clock);
  const relay = new PeriodicLoop(
    "outbox relay",
    async () => ({ more: (await relayOutboxBatch(db, bus, clock, RELAY_BATCH)) === RELAY_BATCH }),
    500,
    log,
  );
  relay.start();
  return {
    log,
    clock,
    random,
    ids: options.ids ?? uuidIds,
    protector: new CodeProtector(keys, random),
    db,
    bus,
    probe,
    publisher,
    close: async () => {
      await relay.stop();
      await publisher.settled();
      await bus.close();
      await singleInstance?.release();
      await probe.close();
      await db.destroy();
    },
  };
}

/**
 * Consumes dispatch messages of the configured channels and sends them through
 * the configured providers. Returns the function that stops consuming, lets
 * sends in flight finish, and closes provider connections.
 */
export async function startWorkers(runtime: Runtime, config: Config, inbox: DevInbox): Promise<() => Promise<void>> {
  const onOutboxWritten: OnOutboxWritten = (messages) => runtime.publisher.publishCommitted(messages);
  const outcomes = { db: runtime.db, clock: runtime.clock, onOutboxWritten };
  // Receipts that arrive on a provider's own connection (SMPP's deliver_sm) are stored here, like a webhook's.
  const receipts = async (receipt: DeliveryReceipt) => void (await applyReceipt(outcomes, receipt));
  const { providers, close } = createProviders(config.routing.providers, { inbox, receipts, log: runtime.log });
  const stop = await startChannelWorkers(
    runtime.bus,
    {
      db: runtime.db,
      clock: runtime.clock,
      protector: runtime.protector,
      providers,
      routes: new Map(config.routing.routes.map((r) => [r.id, r])),
      messages: config.messages,
      log: runtime.log,
      onOutboxWritten,
      maxDeliver: WORKER_MAX_DELIVER,
    },
    { channels: config.workerChannels, concurrency: config.workerConcurrency, maxDeliver: WORKER_MAX_DELIVER },
  );
  return async () => {
    await stop();
    await close();
  };
}

/**
 * Without NATS the work queue lives in this process's memory, so two things
 * follow. Only one process may run on the database (a second one would
 * re-dispatch the first one's work): on PostgreSQL this is checked with an
 * advisory lock, and a second `serve` refuses to start. And what a crash left
 * unsent is dispatched again at start.
 */
async function startInProcessBusRun(config: Config, db: Db, log: Logger): Promise<{ release(): Promise<void> } | undefined> {
  const lock =
    config.database.kind === "postgres"
      ? await holdSingleInstanceLock(config.database.url, "serve on the in-process bus", log).catch((error: unknown) => {
          if (!(error instanceof AnotherInstanceError)) throw error;
          throw new AnotherInstanceError(`${error.message}: several serve replicas on one database need NATS (OTP_NATS_URL)`);
        })
      : undefined;
  const requeued = await republishQueuedDispatches(db, "otp.dispatch.");
  if (requeued > 0) log.info("dispatching again the attempts a previous run left queued", { attempts: requeued });
  return lock;
}
