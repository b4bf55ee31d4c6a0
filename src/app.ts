import type { ServiceImpl } from "@connectrpc/connect";
import { HealthCheckResponse_ServingStatus as Serving } from "../gen/grpc/health/v1/health_pb.js";
import { OtpService } from "../gen/otp/v1/otp_service_pb.js";
import { bearerTokenAuthentication, noAuthentication } from "./api/auth.js";
import { createOtpService } from "./api/otp-service.js";
import { EventHub } from "./bus/event-hub.js";
import type { Bus } from "./bus/bus.js";
import { JetStreamBus } from "./bus/jetstream-bus.js";
import { MemoryBus } from "./bus/memory-bus.js";
import { DISPATCH_SUBJECTS } from "./bus/subjects.js";
import { startChannelWorkers } from "./channels/channel-worker.js";
import { SandboxProvider } from "./channels/providers/sandbox/sandbox-provider.js";
import type { Config } from "./config/config.js";
import { loadOrCreateDevKeys } from "./config/dev-keys.js";
import { DEFAULT_POLICIES, SANDBOX_ROUTES } from "./config/sandbox-catalogue.js";
import { DevInbox } from "./dev/dev-inbox.js";
import { devInboxPages } from "./dev/inbox-pages.js";
import { relayOutboxBatch } from "./dispatch/outbox-relay.js";
import { CodeProtector } from "./domain/code-protector.js";
import { cryptoRandom, systemClock, uuidIds, type Clock, type IdGenerator, type RandomSource } from "./domain/ports.js";
import { expireDue } from "./service/end-verification.js";
import type { ServiceDeps } from "./service/deps.js";
import { migrateToLatest, openDatabase } from "./store/database.js";
import { jsonLogger, type Logger } from "./telemetry/logger.js";
import { startGrpcServer } from "./transport/grpc-server.js";
import { HealthRegistry } from "./transport/health.js";
import { startHttpServer } from "./transport/http-server.js";
import { PeriodicLoop } from "./util/periodic-loop.js";

export interface AppOptions {
  readonly clock?: Clock;
  readonly random?: RandomSource;
  readonly ids?: IdGenerator;
  readonly log?: Logger;
}

/** Everything `serve` runs except its listeners: enough to serve the API over any transport. */
export interface Core {
  readonly otp: ServiceImpl<typeof OtpService>;
  readonly health: HealthRegistry;
  readonly service: ServiceDeps;
  /** What the sandbox providers delivered (codes included): exposed over HTTP only when `devInbox` is on. */
  readonly inbox: DevInbox;
  /** Aborted on stop: ends streams cleanly. */
  readonly shutdownSignal: AbortSignal;
  /** Health NOT_SERVING and streams ended; then `stop` once the listeners are closed. */
  beginShutdown(): void;
  stop(): Promise<void>;
}

export interface RunningApp {
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly core: Core;
  /** Health first goes NOT_SERVING, then RPCs finish, streams end, workers finish their messages. */
  stop(): Promise<void>;
}

const RELAY_BATCH = 256;
const WORKER_MAX_DELIVER = 5;

/**
 * Wires the database, bus, outbox relay, expiry sweep, in-process channel
 * workers and the OtpService implementation.
 */
export async function createCore(config: Config, options: AppOptions = {}): Promise<Core> {
  const log = options.log ?? jsonLogger(config.role);
  const clock = options.clock ?? systemClock;
  const random = options.random ?? cryptoRandom;
  const keys =
    config.codeHashKey && config.codeSealKey
      ? { hashKey: config.codeHashKey, sealKey: config.codeSealKey }
      : await loadOrCreateDevKeys(config.dataDir);
  const protector = new CodeProtector(keys, random);

  const db = await openDatabase(config.database);
  if (config.migrateOnStart) await migrateToLatest(db);
  const bus: Bus = config.natsUrl
    ? await JetStreamBus.connect({ servers: config.natsUrl })
    : new MemoryBus({ workQueueSubjects: [DISPATCH_SUBJECTS] });
  const hub = await EventHub.start(bus);

  const relay = new PeriodicLoop(
    "outbox relay",
    async () => ({ more: (await relayOutboxBatch(db, bus, clock, RELAY_BATCH)) === RELAY_BATCH }),
    500,
    log,
  );
  const service: ServiceDeps = {
    db,
    clock,
    ids: options.ids ?? uuidIds,
    random,
    protector,
    limits: config.limits,
    catalogue: { routes: SANDBOX_ROUTES, policies: DEFAULT_POLICIES },
    onOutboxWritten: () => relay.wake(),
  };
  const expiry = new PeriodicLoop("expiry sweep", async () => ({ more: (await expireDue(service)) > 0 }), 1_000, log);
  relay.start();
  expiry.start();

  const inbox = new DevInbox();
  const stopWorkers = await startChannelWorkers(
    bus,
    {
      db,
      clock,
      protector,
      providers: new Map([["sandbox", new SandboxProvider(inbox)]]),
      log,
      onOutboxWritten: () => relay.wake(),
      submitTimeoutMs: 10_000,
      maxDeliver: WORKER_MAX_DELIVER,
    },
    { channels: config.workerChannels, concurrency: config.workerConcurrency, maxDeliver: WORKER_MAX_DELIVER },
  );

  if (config.callers === undefined) log.warn("authentication is OFF: every call runs as caller \"dev\" (dev role only)");
  const authenticator = config.callers ? bearerTokenAuthentication(config.callers) : noAuthentication();
  const otp = createOtpService({ service, feed: hub, authenticator, log });
  const health = new HealthRegistry();
  health.set("", Serving.SERVING);
  health.set(OtpService.typeName, Serving.SERVING);
  const shutdown = new AbortController();
  const beginShutdown = () => {
    health.shutdown();
    shutdown.abort();
  };
  return {
    otp,
    health,
    service,
    inbox,
    shutdownSignal: shutdown.signal,
    beginShutdown,
    stop: async () => {
      beginShutdown();
      await stopWorkers();
      await relay.stop();
      await expiry.stop();
      hub.stop();
      await bus.close();
      await db.destroy();
    },
  };
}

/** The `serve` role (and `dev`, which is `serve` on embedded defaults): the core behind the gRPC and HTTP ports. */
export async function startApp(config: Config, options: AppOptions = {}): Promise<RunningApp> {
  const log = options.log ?? jsonLogger(config.role);
  const core = await createCore(config, { ...options, log });
  const { otp, health, shutdownSignal } = core;
  const grpcServer = await startGrpcServer({ host: config.host, port: config.grpcPort, otp, health, shutdownSignal });
  const httpServer = await startHttpServer({
    host: config.host,
    port: config.httpPort,
    otp,
    health,
    pages: config.devInbox ? [devInboxPages(core.inbox)] : [],
    shutdownSignal,
  });
  log.info("listening", { grpcPort: grpcServer.port, httpPort: httpServer.port, database: config.database.kind, bus: config.natsUrl ? "jetstream" : "in-process" });
  return {
    httpPort: httpServer.port,
    grpcPort: grpcServer.port,
    core,
    stop: async () => {
      // Probes see NOT_SERVING and streams end first; unary calls in flight still complete.
      core.beginShutdown();
      await Promise.all([grpcServer.close(config.shutdownGraceMs), httpServer.close(config.shutdownGraceMs)]);
      await core.stop();
      log.info("stopped");
    },
  };
}
