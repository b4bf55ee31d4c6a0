import { setMaxListeners } from "node:events";
import type { ServiceImpl } from "@connectrpc/connect";
import { HealthCheckResponse_ServingStatus as Serving } from "../gen/grpc/health/v1/health_pb.js";
import { OtpService } from "../gen/otp/v1/otp_service_pb.js";
import { bearerTokenAuthentication, noAuthentication } from "./api/auth.js";
import { createOtpService } from "./api/otp-service.js";
import { EventHub } from "./bus/event-hub.js";
import { createReceiptSources } from "./channels/providers/registry.js";
import type { Config } from "./config/config.js";
import { SANDBOX_ROUTING } from "./config/sandbox-catalogue.js";
import { DevInbox } from "./dev/dev-inbox.js";
import type { DatabaseProbe } from "./store/availability.js";
import { dashboardPages } from "./dashboard/dashboard-pages.js";
import { devInboxPages } from "./dev/inbox-pages.js";
import { dropUnmatchedReceipts } from "./receipts/parked-sweep.js";
import { pollDueReceipts } from "./receipts/receipt-poller.js";
import { dlrWebhook } from "./receipts/webhook.js";
import { openRuntime, startWorkers, type AppOptions } from "./runtime.js";
import { expireDue } from "./service/end-verification.js";
import { advanceDuePlans } from "./service/fallback.js";
import { pruneOnce } from "./service/retention.js";
import { PumpingGuard } from "./service/pumping-guard.js";
import { RouteHealthTracker } from "./service/route-health.js";
import { sendAdmissions } from "./service/send-limits.js";
import { unmeteredWrites } from "./service/send-otp.js";
import { eventSeqReads, watchStarts } from "./service/watch-delivery.js";
import { deleteExpiredEstimates } from "./store/repositories/estimates.js";
import { openBalance } from "./store/repositories/ledger.js";
import type { ServiceDeps } from "./service/deps.js";
import { UnavailableError } from "./domain/errors.js";
import { jsonLogger, type Logger } from "./telemetry/logger.js";
import { otpMetrics } from "./telemetry/metrics.js";
import { metricsPage } from "./transport/metrics-page.js";
import { countUnpublished } from "./store/repositories/outbox.js";
import { DISPATCH_SUBJECTS, dispatchSubject } from "./bus/subjects.js";
import { CHANNELS } from "./domain/channel.js";
import { untilReady } from "./transport/until-ready.js";
import { startGrpcServer } from "./transport/grpc-server.js";
import { HealthRegistry } from "./transport/health.js";
import { startHttpServer, type PageHandler } from "./transport/http-server.js";
import { PeriodicLoop } from "./util/periodic-loop.js";

export type { AppOptions };

const POLL_BATCH = 64;
const PLAN_BATCH = 1_000;
/** Rows of each kind deleted per statement: small, so no delete holds many locks for long. */
const RETENTION_BATCH = 1_000;

/** Everything `serve` runs except its listeners: enough to serve the API over any transport. */
export interface Core {
  readonly otp: ServiceImpl<typeof OtpService>;
  readonly health: HealthRegistry;
  readonly service: ServiceDeps;
  /** What the sandbox providers delivered (codes included): exposed over HTTP only when `devInbox` is on. */
  readonly inbox: DevInbox;
  /** The process's one subscription to delivery events, fanned out to watchers. */
  readonly events: EventHub;
  /** Plain HTTP routes on the HTTP port: receipt webhooks, and the dev inbox when enabled. */
  readonly pages: readonly PageHandler[];
  /** Aborted on stop, with an UnavailableError: open streams fail with it, and their clients resume elsewhere. */
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

/**
 * Wires the runtime, expiry sweep, receipt webhooks and polling, the
 * OtpService implementation and, on the in-process bus, the channel workers
 * (with JetStream they run as separate `worker` processes).
 */
export async function createCore(config: Config, options: AppOptions = {}, health = new HealthRegistry(), shutdown = new AbortController()): Promise<Core> {
  const runtime = await openRuntime(config, options);
  const { db, clock, log, publisher } = runtime;
  otpMetrics.observe("otp_outbox_backlog", "Outbox messages not yet published to NATS", async () => [{ value: await countUnpublished(db) }]);
  otpMetrics.observe("otp_dispatch_pending", "Dispatch messages waiting for (or held by) a channel worker, by channel", async () => {
    const backlog = await runtime.bus.backlog(DISPATCH_SUBJECTS);
    return CHANNELS.map((channel) => ({ value: backlog.get(dispatchSubject(channel)) ?? 0, attributes: { channel } }));
  });
  const pumping = new PumpingGuard(db, clock, config.pumping, config.limits.numberPrefixDigits, log);
  const routeHealth = new RouteHealthTracker(db, clock, config.routeHealth, () => pumping.flagged(), log);
  await pumping.refresh();
  await routeHealth.refresh();
  const service: ServiceDeps = {
    db,
    sendAdmissions: sendAdmissions(db),
    unmeteredWrites: unmeteredWrites(db),
    eventSeqReads: eventSeqReads(db),
    watchStarts: watchStarts(db),
    clock,
    ids: runtime.ids,
    random: runtime.random,
    protector: runtime.protector,
    limits: config.limits,
    catalogue: { routes: config.routing.routes, policies: config.routing.policies },
    routeHealth: routeHealth.get,
    phoneBlocked: pumping.blockedReason,
    spendCaps: new Map((config.callers ?? []).flatMap((c) => (c.dailySpendCap ? [[c.id, c.dailySpendCap] as const] : []))),
    messages: config.messages,
    onOutboxWritten: (messages) => publisher.publishCommitted(messages),
  };
  const hub = await EventHub.start(runtime.bus);
  const outcomes = { db, clock, onOutboxWritten: service.onOutboxWritten };
  const receipts = createReceiptSources(config.routing.providers);
  for (const caller of config.callers ?? []) if (caller.credit) await openBalance(db, caller.id, caller.credit, clock.now());
  const loops = [
    // Polled every 250 ms so a step fires within a second of its deadline, on any replica.
    new PeriodicLoop("fallback scheduler", async () => ({ more: (await advanceDuePlans(service, PLAN_BATCH, log)) === PLAN_BATCH }), 250, log),
    new PeriodicLoop("expiry sweep", async () => ({ more: (await expireDue(service)) > 0 || (await deleteExpiredEstimates(db, clock.now())) > 0 }), 1_000, log),
    new PeriodicLoop("receipt poller", async () => ({ more: (await pollDueReceipts(outcomes, receipts.pollers, log, POLL_BATCH)) === POLL_BATCH }), 1_000, log),
    new PeriodicLoop("route health", async () => (await routeHealth.refresh(), { more: false }), 10_000, log),
    // Every 5 s: a pumped prefix is flagged after its volume floor plus at most 5 s of sends.
    new PeriodicLoop("pumping guard", async () => (await pumping.refresh(), { more: false }), 5_000, log),
    new PeriodicLoop("unmatched receipts", async () => ({ more: (await dropUnmatchedReceipts(db, clock, config.receiptGraceMs, log)) > 0 }), 60_000, log),
    new PeriodicLoop("retention", async () => pruneOnce(db, clock, config.retention, RETENTION_BATCH), 60_000, log),
    // Health follows the database: NOT_SERVING while it does not answer, so probes and meshes route around this replica.
    new PeriodicLoop("database probe", () => probeDatabase(runtime.probe, health, log), 1_000, log),
  ];
  loops.forEach((loop) => loop.start());

  if (config.role !== "dev" && config.routing === SANDBOX_ROUTING) {
    log.warn("no routing file (OTP_CONFIG): only sandbox routes, which send nothing outside this process");
  }
  const inbox = new DevInbox();
  const stopWorkers = config.natsUrl ? async () => {} : await startWorkers(runtime, config, inbox);

  if (config.callers === undefined) log.warn("authentication is OFF: every call runs as caller \"dev\" (dev role only)");
  const authenticator = config.callers ? bearerTokenAuthentication(config.callers) : noAuthentication();
  const otp = createOtpService({ service, feed: hub, authenticator, log, watchKeepAliveMs: config.watchKeepAliveMs, callTimeoutMs: config.callTimeoutMs });
  setServing(health, true);
  const beginShutdown = () => {
    health.shutdown();
    shutdown.abort(new UnavailableError("this server is shutting down: watch again, with after_sequence set to the last sequence received"));
  };
  return {
    otp,
    health,
    service,
    inbox,
    events: hub,
    pages: [
      dlrWebhook(receipts.webhooks, outcomes, log),
      dashboardPages({ signIn: config.callers !== undefined }),
      ...(config.devInbox ? [devInboxPages(inbox)] : []),
    ],
    shutdownSignal: shutdown.signal,
    beginShutdown,
    stop: async () => {
      beginShutdown();
      await stopWorkers();
      await Promise.all(loops.map((loop) => loop.stop()));
      hub.stop();
      await runtime.close();
    },
  };
}

/** Health of the server and of OtpService: SERVING only while the database answers and no shutdown has begun. */
function setServing(health: HealthRegistry, databaseAnswers: boolean): boolean {
  const status = databaseAnswers && !health.shuttingDown ? Serving.SERVING : Serving.NOT_SERVING;
  if (health.get(OtpService.typeName) === status) return false;
  health.set("", status);
  health.set(OtpService.typeName, status);
  return true;
}

async function probeDatabase(probe: DatabaseProbe, health: HealthRegistry, log: Logger): Promise<{ more: boolean }> {
  const answers = await probe.check().then(
    () => true,
    () => false,
  );
  if (setServing(health, answers)) log.warn(answers ? "the database answers again: SERVING" : "the database does not answer: NOT_SERVING");
  return { more: false };
}

/**
 * The `serve` role (and `dev`, which is `serve` on embedded defaults): the core behind the gRPC and HTTP ports.
 * The ports open first, NOT_SERVING (RPCs answer UNAVAILABLE), while the core waits for its database: pods start
 * in any order, and a probe that cannot connect is not the same as one that hears "not yet".
 */
export async function startApp(config: Config, options: AppOptions = {}): Promise<RunningApp> {
  const log = options.log ?? jsonLogger(config.role, config.logLevel);
  const health = new HealthRegistry();
  health.set("", Serving.NOT_SERVING);
  health.set(OtpService.typeName, Serving.NOT_SERVING);
  const shutdown = new AbortController();
  const shutdownSignal = shutdown.signal;
  // Every call in flight links its own signal to this one: thousands of listeners are normal, not a leak.
  setMaxListeners(0, shutdownSignal);
  let ready: Core | undefined;
  const otp = untilReady(OtpService, () => ready?.otp);
  const pages: PageHandler[] = [
    // Answers while starting too (what is known so far).
    metricsPage,
    (request, response) => {
      if (ready !== undefined) return ready.pages.some((page) => page(request, response));
      response.writeHead(503, { "content-type": "text/plain", "retry-after": "1" });
      response.end("starting\n");
      return true;
    },
  ];
  const limits = config.connections;
  const grpcServer = await startGrpcServer({ host: config.host, port: config.grpcPort, otp, health, shutdownSignal, limits });
  const httpServer = await startHttpServer({ host: config.host, port: config.httpPort, otp, health, pages, shutdownSignal, limits });
  log.info("ports open; starting", { grpcPort: grpcServer.port, httpPort: httpServer.port });
  const core = await createCore(config, { ...options, log }, health, shutdown).catch(async (error: unknown) => {
    await Promise.all([grpcServer.close(0), httpServer.close(0)]);
    throw error;
  });
  ready = core;
  log.info("listening", { grpcPort: grpcServer.port, httpPort: httpServer.port, database: config.database.kind, bus: config.natsUrl ? "jetstream" : "in-process" });
  return {
    httpPort: httpServer.port,
    grpcPort: grpcServer.port,
    core,
    stop: async () => {
      // Probes see NOT_SERVING first, and calls are still served while endpoints drop this replica (the drain delay);
      // then streams end (UNAVAILABLE: clients resume elsewhere), the ports stop accepting and unary calls in flight complete.
      health.shutdown();
      if (config.drainDelayMs > 0) {
        log.info("draining: NOT_SERVING, still answering", { drainDelayMs: config.drainDelayMs });
        await new Promise((resolve) => setTimeout(resolve, config.drainDelayMs));
      }
      core.beginShutdown();
      await Promise.all([grpcServer.close(config.shutdownGraceMs), httpServer.close(config.shutdownGraceMs)]);
      log.info("ports closed; stopping background work");
      await core.stop();
      log.info("stopped");
    },
  };
}
