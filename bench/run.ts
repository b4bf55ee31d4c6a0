/**
 * npm run bench [-- --quick] [-- --only=api,flows,scheduler,streams,dev] [-- --tracing[=ratio]] [-- --slow-plans[=ms]]
 *
 * `serve` and `worker` as processes on real PostgreSQL and nats-server (the
 * test harness starts them on loopback, throwaway data), an SMS API peer on
 * loopback, and a load generator in its own process (bench/load-process.ts)
 * over several HTTP/2 connections. Baselines are measured in the same run,
 * on the same box: grpc.health.v1 Check on the same port, a raw PostgreSQL
 * transaction of ten single-row writes through a pool like the service's,
 * and JetStream publish. `--only` picks sections (the baselines always run):
 * api (SendOtp, fixed rates, VerifyOtp with a wrong code, the worker's drain,
 * VerifyOtp with the right code), flows (complete flows), scheduler (a
 * backlog's drain, lateness at steady load, the expiry sweep), streams (many
 * WatchDelivery streams on one serve), dev (the embedded role on PGlite).
 * Each measure starts once what came before it is written out (bench/settle.ts).
 * `--tracing` runs `serve` and `worker` with OpenTelemetry on, every trace
 * (or the given ratio) sampled and exported over OTLP/HTTP to a sink in this process.
 * `--slow-plans` has PostgreSQL log the plan of each statement slower than
 * 80 ms (or the given ms) and each autovacuum run, into a directory it names
 * at the end: how the causes in BENCHMARKS.md (24) were found.
 */
import { createHash } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { DeliveryEventKind } from "../gen/otp/v1/common_pb.js";
import { OtpService } from "../gen/otp/v1/otp_service_pb.js";
import { CodeProtector } from "../src/domain/code-protector.js";
import { cryptoRandom } from "../src/domain/ports.js";
import { DEFAULT_POOL } from "../src/store/database.js";
import { startNats } from "../test/harness/nats.js";
import { createTestDatabase, startPostgres } from "../test/harness/postgres.js";
import { TEST_KEYS } from "../test/harness/service-fixture.js";
import { startServeProcess, startServiceProcess, startWorkerProcess, type ServiceProcess } from "../test/harness/service-process.js";
import { HttpRoutePeer } from "../test/peers/http-route-peer.js";
import { BOX_FIGURES, CPU_GROUPS } from "./cpu.js";
import { atRate, clients, percentiles, saturate, withCpu, type LoadResult } from "./load.js";
import { LoadGenerator } from "./load-generator.js";
import { OtlpSink } from "./otlp-sink.js";
import { PlanCopies } from "./plan-copies.js";
import { settleWrites } from "./settle.js";

const quick = process.argv.includes("--quick");
/** `--tracing` samples every trace; `--tracing=0.1` a tenth of them (parent-based ratio, as production would). */
const tracingArg = process.argv.find((a) => a === "--tracing" || a.startsWith("--tracing="));
const tracing = tracingArg !== undefined;
const samplingRatio = tracingArg?.includes("=") ? Number(tracingArg.split("=")[1]) : 1;
const slowPlansArg = process.argv.find((a) => a === "--slow-plans" || a.startsWith("--slow-plans="));
const slowPlansMs = slowPlansArg === undefined ? undefined : slowPlansArg.includes("=") ? Number(slowPlansArg.split("=")[1]) : 80;
if (slowPlansMs !== undefined && !(slowPlansMs >= 0)) throw new Error(`--slow-plans: ${slowPlansArg} is not a number of milliseconds`);
const SECTIONS = ["api", "flows", "scheduler", "streams", "dev"] as const;
const onlyArg = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length);
const sections = new Set(onlyArg ? onlyArg.split(",") : SECTIONS);
for (const name of sections) if (!(SECTIONS as readonly string[]).includes(name)) throw new Error(`--only: no section ${name} (${SECTIONS.join(", ")})`);
const SECONDS = quick ? 1 : 10;
const CONNECTIONS = 4;
const IN_FLIGHT = 16;

const CALLERS = 100;
/** Due plans for the scheduler's drain. */
const PLANS = quick ? 1_000 : 100_000;
/** Verifications whose code expired at once, for the expiry sweep. */
const EXPIRING = quick ? 1_000 : 20_000;
/** Plans falling due per second for the scheduler's lateness. */
const DUE_PER_SECOND = 1_000;
/** Concurrent WatchDelivery streams on one serve, over this many HTTP/2 connections. */
const STREAMS = quick ? 500 : 5_000;
const STREAM_CONNECTIONS = 10;
const CANCELS_PER_SECOND = 200;
const tokenOf = (caller: number) => `bench-token-${caller}`;
const headersOf = (caller: number) => ({ authorization: `Bearer ${tokenOf(caller)}` });

async function main(): Promise<void> {
  const benchStarted = performance.now();
  const planLog = slowPlansMs === undefined ? undefined : slowPlanLog(slowPlansMs);
  const postgres = await startPostgres(planLog?.settings);
  const nats = await startNats();
  const peer = await HttpRoutePeer.start({ apiKey: "bench-key", webhookSecret: "bench-secret" });
  const sink = tracing ? await OtlpSink.start(samplingRatio) : undefined;
  const processes: ServiceProcess[] = [];
  let loadProcess: LoadGenerator | undefined;
  try {
    const databaseUrl = await createTestDatabase(postgres.adminUrl);
    const env = {
      OTP_SENDS_PER_CALLER: "100000000/1m",
      OTP_SENDS_PER_DESTINATION: "100000000/1m",
      // Codes nobody types, by the hundred thousand, are SMS pumping to the defence: the bench measures throughput.
      OTP_PUMPING_MODE: "off",
      OTP_SENDS_PER_NUMBER_RANGE: "100000000/1m",
      OTP_CALLERS: Array.from({ length: CALLERS }, (_, i) => `bench-${i}:${sha256(tokenOf(i))}`).join(","),
      // The load generator's idle HTTP/2 connections stay open: no point waiting the default 10 s for them at the end.
      OTP_SHUTDOWN_GRACE_MS: "1000",
      ...sink?.env(),
    };
    const options = { databaseUrl, natsUrl: nats.url, configFile: benchConfig(peer.writeConfigFile("5s")), env };
    const serve = await startServeProcess(options);
    processes.push(serve);
    peer.webhookUrl = `http://127.0.0.1:${serve.httpPort}/webhooks/dlr/bridgex`;

    // A second serve on the migrated database: the built binary's start, from spawn to SERVING. The median of three
    // (one start is at the mercy of whatever else the box does in that second).
    const starts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const startAt = performance.now();
      const second = await startServeProcess({ ...options, env: { ...env, OTP_MIGRATE_ON_START: "false" } });
      starts.push(Math.round(performance.now() - startAt));
      await second.stop("SIGTERM");
    }
    const startMs = starts.sort((a, b) => a - b)[1]!;

    process.stderr.write(`bench: servers up after ${Math.round((performance.now() - benchStarted) / 100) / 10} s\n`);
    const load = (loadProcess = await LoadGenerator.start(serve.grpcPort, CONNECTIONS));
    // This process's own calls (the sections' templates, the streams section): numbers the load generator never uses.
    const otp = clients(OtpService, serve.grpcPort, CONNECTIONS);
    let phone = 0;
    const nextPhone = () => `+3164${String(++phone).padStart(7, "0")}`;
    const results: LoadResult[] = [];
    // Every measure starts with what came before it written out (bench/settle.ts).
    const measure = async (run: () => Promise<LoadResult>) => (await settleWrites(databaseUrl), await run());
    results.push(await measure(() => withCpu(() => load.run({ name: "grpc.health.v1 Check (transport baseline)", call: { kind: "check" }, ...saturation }))));
    results.push(await measure(() => rawPostgres(databaseUrl)));
    results.push(await measure(() => jetStreamPublish(nats.url)));

    let worker: Promise<ServiceProcess> | undefined;
    const startWorker = async () => {
      if (worker !== undefined) {
        await worker;
        return false;
      }
      worker = startWorkerProcess({ ...options, channels: "sms" });
      processes.push(await worker);
      return true;
    };
    const bench: Bench = { databaseUrl, options, load, measure, otp, nextPhone, results, serve, startWorker };
    const timed = async (name: string, section: () => Promise<void>) => {
      const started = performance.now();
      await section();
      process.stderr.write(`bench: ${name} took ${Math.round((performance.now() - started) / 100) / 10} s\n`);
    };
    if (sections.has("api")) await timed("api", () => apiSection(bench));
    if (sections.has("flows")) await timed("flows", () => flowsSection(bench));
    if (sections.has("scheduler")) await timed("scheduler", () => schedulerSection(bench));
    if (sections.has("streams")) await timed("streams", () => streamsSection(bench));
    if (sections.has("dev")) await timed("dev", async () => void results.push(await measure(devSendOtp)));
    report(results, startMs);
    if (sink) process.stderr.write(`bench: tracing on, ${sink.requests} OTLP export requests (${Math.round(sink.bytes / 1e6)} MB) received\n`);
  } finally {
    await loadProcess?.stop();
    for (const p of processes) await p.stop("SIGTERM");
    await peer.stop();
    await sink?.stop();
    await nats.stop();
    await postgres.stop();
    if (planLog) process.stderr.write(`bench: plans of statements over ${slowPlansMs} ms, and autovacuum's runs, in ${planLog.dir}\n`);
  }
}

/**
 * Settings that have PostgreSQL log the plan of each statement slower than `ms`
 * (nested ones too: foreign-key checks) and each autovacuum run, and the
 * directory the log goes to. It outlives the server's data directory; the
 * server may run as the postgres user, so anyone may write to it.
 */
function slowPlanLog(ms: number): { dir: string; settings: string[] } {
  const dir = mkdtempSync(path.join(tmpdir(), "otp-bench-plans-"));
  chmodSync(dir, 0o777);
  const settings = [
    "shared_preload_libraries=auto_explain",
    `auto_explain.log_min_duration=${ms}`,
    "auto_explain.log_nested_statements=on",
    "log_autovacuum_min_duration=0",
    "logging_collector=on",
    `log_directory=${dir}`,
    "log_file_mode=0644",
  ];
  return { dir, settings };
}

const CONCURRENCY = CONNECTIONS * IN_FLIGHT;
/** A measure at saturation: every caller slot busy for SECONDS. */
const saturation = { mode: "saturate", seconds: SECONDS, concurrency: CONCURRENCY } as const;
/** A measure at a fixed rate (open loop) for SECONDS. */
const fixedRate = (rate: number) => ({ mode: "rate", rate, seconds: SECONDS }) as const;

/** What every section works with. */
interface Bench {
  readonly databaseUrl: string;
  readonly options: Parameters<typeof startWorkerProcess>[0];
  /** The load generator's process: every measure of a rate and its latencies. */
  readonly load: LoadGenerator;
  /** Runs a measure once the writes before it are out (bench/settle.ts): every measure here goes through it (PlanCopies settles its own). */
  readonly measure: (run: () => Promise<LoadResult>) => Promise<LoadResult>;
  /** This process's own clients, for single calls. */
  readonly otp: ReturnType<typeof clients<typeof OtpService>>;
  readonly nextPhone: () => string;
  readonly results: LoadResult[];
  readonly serve: ServiceProcess;
  /** Starts the one worker (SMS) unless a section already did: true if this call started it. */
  readonly startWorker: () => Promise<boolean>;
}

/** SendOtp at saturation and at fixed rates, VerifyOtp with a wrong code, the worker's drain, then VerifyOtp with the right code. */
async function apiSection({ databaseUrl, load, measure, results, startWorker }: Bench): Promise<void> {
  // The API alone: no worker yet, so the box's two cores serve SendOtp (and the outbox publishing) only.
  // The dispatches queue up in JetStream for the worker's drain below.
  const oneCaller = await measure(() => withCpu(() => load.run({ name: "SendOtp, one caller (no worker running)", call: { kind: "send", callers: 1 }, ...saturation })));
  results.push(oneCaller);
  results.push(await measure(() => load.run({ name: `SendOtp, ${CALLERS} callers (no worker running)`, call: { kind: "send", callers: CALLERS }, ...saturation })));
  for (const share of [0.25, 0.5, 0.75]) {
    const rate = Math.max(1, Math.round(oneCaller.perSecond * share));
    // With the CPU per call: at lower rates the sends of one event-loop turn are fewer, so each costs more.
    results.push(await measure(() => withCpu(() => load.run({ name: `SendOtp, one caller, fixed rate ${rate}/s (${share * 100} % of saturation)`, call: { kind: "send", callers: 1 }, ...fixedRate(rate) }))));
    if (share === 0.5) {
      // The same rate of the cheapest call: the load generator's and the transport's own tail, for comparison.
      results.push(await measure(() => load.run({ name: `grpc.health.v1 Check, fixed rate ${rate}/s (the tail without SendOtp)`, call: { kind: "check" }, ...fixedRate(rate) })));
      // And the database baseline's transaction at that rate, from this process: PostgreSQL's tail without the service.
      results.push(await measure(() => rawPostgres(databaseUrl, rate)));
    }
  }
  results.push(await measure(() => withCpu(() => load.run({ name: "VerifyOtp, wrong code", call: { kind: "verify-wrong" }, ...saturation }))));

  // The worker starts with every send above queued: how fast it drains them to DELIVERED.
  const queued = await load.sent();
  results.push(
    await measure(async () => {
      const drainStarted = performance.now();
      await startWorker();
      await untilAllDelivered(databaseUrl, queued);
      const drainSeconds = (performance.now() - drainStarted) / 1000;
      return { name: `worker drain: ${queued} queued sends to DELIVERED (start included)`, perSecond: Math.round(queued / drainSeconds), p50Ms: NaN, p99Ms: NaN, errors: 0 };
    }),
  );

  // The right code, once per verification, after the drain: each code's SMS has gone out, so an approval has no
  // unsent attempt to cancel, as for a user who typed the code the SMS brought.
  const codes = await pendingCodes(databaseUrl);
  results.push(await measure(() => withCpu(() => load.run({ name: "VerifyOtp, right code", call: { kind: "verify-right", codes }, ...saturation }))));
}

/** Complete flows at saturation and at half that rate, with the worker running (started here unless the api section did). */
async function flowsSection({ load, measure, results, startWorker }: Bench): Promise<void> {
  if (await startWorker()) {
    // A worker just started costs twice its CPU per flow for its first few thousand (the api section's drain warms
    // it otherwise): flows unreported first, so that `--only=flows` measures what a whole run does.
    await load.run({ name: "complete flows to warm up", call: { kind: "flow", callers: CALLERS }, ...saturation });
  }
  // Complete flows: SendOtp, the provider request, its signed receipt, and the DELIVERED event on a WatchDelivery stream.
  const flows = await measure(() => withCpu(() => load.run({ name: "complete flow: SendOtp → provider → receipt → DELIVERED on WatchDelivery", call: { kind: "flow", callers: CALLERS }, ...saturation })));
  results.push(flows);
  // At saturation a flow's latency is mostly queueing; at half the rate it is the path's own: two trips through the outbox and NATS.
  const flowRate = Math.max(1, Math.round(flows.perSecond / 2));
  const halfRate = await measure(() => withCpu(() => load.run({ name: `complete flow, fixed rate ${flowRate}/s (50 % of saturation)`, call: { kind: "flow", callers: CALLERS }, ...fixedRate(flowRate) })));
  results.push(halfRate);
  // The "SendOtp → provider request" at that rate: the provider (the peer) answers at once, so its answer's time is its request's.
  const { p50Ms, p99Ms } = halfRate.toProvider!;
  results.push({ name: `the same flows: SendOtp call → the provider's answer (ATTEMPT_SUBMITTED's time)`, perSecond: halfRate.perSecond, p50Ms, p99Ms, errors: halfRate.errors });
}

/**
 * The fallback scheduler of the one serve: PLANS verifications whose SMS step
 * went unanswered, all due at once (as after a provider or NATS outage), moved
 * on to their email step; then plans falling due at DUE_PER_SECOND, and how
 * late each one's next attempt was queued.
 */
async function schedulerSection({ databaseUrl, otp, nextPhone, results }: Bench): Promise<void> {
  const template = await otp[0]!.sendOtp({ destination: { phone: nextPhone(), email: "drain@example.com" } }, { headers: headersOf(0) });
  const copies = new PlanCopies(databaseUrl, template.verificationId);
  await copies.open();
  try {
    const { drainMs, publishedMs, messages, cpuMsPerPlan } = await copies.drain(PLANS);
    results.push({ name: `fallback scheduler: ${PLANS} due plans escalated (one serve; CPU until their messages are published)`, perSecond: Math.round(PLANS / (drainMs / 1000)), p50Ms: NaN, p99Ms: NaN, errors: 0, cpuMsPerCall: cpuMsPerPlan });
    results.push({ name: `outbox: the drain's ${messages} messages published (from the drain's start)`, perSecond: Math.round(messages / (publishedMs / 1000)), p50Ms: NaN, p99Ms: NaN, errors: 0 });
    // Each drained plan is due again at its email step's deadline (30 s after it moved): left on the list, the last
    // 30 s of the drain would fall due a second time during the lateness measure and double the load it is measured
    // at, by as much as the relay's catching up happened to leave (2026-12-06 (7) in BENCHMARKS.md).
    await copies.retire();
    results.push(await copies.lateness(DUE_PER_SECOND, SECONDS));
    // Their next deadlines would otherwise fall due during the sections after this one.
    await copies.retire();
    const { expireMs, cpuMsPerExpiry } = await copies.expire(EXPIRING);
    results.push({ name: `expiry sweep: ${EXPIRING} expired verifications ended (one serve)`, perSecond: Math.round(EXPIRING / (expireMs / 1000)), p50Ms: NaN, p99Ms: NaN, errors: 0, cpuMsPerCall: cpuMsPerExpiry });
  } finally {
    await copies.close();
  }
}

/**
 * STREAMS WatchDelivery streams open at once on the one serve (its RSS before
 * and with them), then each verification canceled at CANCELS_PER_SECOND: the time
 * from the CancelOtp call to its CANCELED event on the stream (an upper bound
 * of event-to-client: it includes the cancel's own call and transaction).
 */
async function streamsSection({ databaseUrl, measure, otp, nextPhone, results, serve }: Bench): Promise<void> {
  const template = await otp[0]!.sendOtp({ destination: { phone: nextPhone() } }, { headers: headersOf(0) });
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    // Copies with the template's first event and no attempts: a stream's first message (that event) says it is
    // open (response headers come with it), and the next one is its cancellation.
    // Records built in a lateral join, as in PlanCopies (`(f(…)).*` would call f once per column).
    await client.query(
      `insert into verifications select r.*
       from verifications v, generate_series(1, $2::int) g,
         jsonb_populate_record(null::verifications, to_jsonb(v) || jsonb_build_object(
           'id', 'vrf_watch_' || g, 'event_seq', 1, 'next_step_at', null, 'expires_at', now() + interval '10 minutes')) r
       where v.id = $1`,
      [template.verificationId, STREAMS],
    );
    await client.query(
      `insert into delivery_events select r.*
       from delivery_events e, generate_series(1, $2::int) g,
         jsonb_populate_record(null::delivery_events, to_jsonb(e) || jsonb_build_object('verification_id', 'vrf_watch_' || g)) r
       where e.verification_id = $1 and e.sequence = 1`,
      [template.verificationId, STREAMS],
    );
  } finally {
    await client.end();
  }
  const rssBefore = rssMb(serve.pid);
  const watchers = clients(OtpService, serve.grpcPort, STREAM_CONNECTIONS);
  const canceledAt = new Map<string, number>();
  const latencies: number[] = [];
  let opened = 0;
  let errors = 0;
  /** Why streams failed, by message: what the error below says if they did not all open. */
  const failures = new Map<string, number>();
  const openingAt = performance.now();
  const streams = Array.from({ length: STREAMS }, async (_, i) => {
    const verificationId = `vrf_watch_${i + 1}`;
    const stream = watchers[i % STREAM_CONNECTIONS]!.watchDelivery({ verificationId }, { headers: headersOf(0), timeoutMs: 120_000 });
    try {
      for await (const message of stream) {
        if (message.event?.sequence === 1n) opened += 1;
        if (message.event?.kind === DeliveryEventKind.CANCELED) {
          latencies.push(performance.now() - canceledAt.get(verificationId)!);
          return;
        }
      }
      errors += 1;
      failures.set("ended without CANCELED", (failures.get("ended without CANCELED") ?? 0) + 1);
    } catch (error) {
      errors += 1;
      const reason = error instanceof Error ? error.message : String(error);
      failures.set(reason, (failures.get(reason) ?? 0) + 1);
    }
  });
  const deadline = Date.now() + 120_000;
  while (opened < STREAMS && Date.now() < deadline) await sleep(100);
  if (opened < STREAMS) {
    const why = [...failures].map(([reason, count]) => `${count}× ${reason}`).join("; ");
    throw new Error(`only ${opened} of ${STREAMS} WatchDelivery streams opened in two minutes (failed: ${why || "none yet"})`);
  }
  // All at once, as clients reconnecting after a restart would: how long until every one had its first event.
  const openSeconds = Math.round((performance.now() - openingAt) / 100) / 10;
  const rssWith = rssMb(serve.pid);
  // Well under CancelOtp's saturation on this box, so the figure is the event's way to the client, not a queue.
  const rate = CANCELS_PER_SECOND;
  const cancels = await measure(() =>
    withCpu(() =>
      atRate(`CancelOtp at ${rate}/s to ${STREAMS} streams`, rate, STREAMS / rate, (i) => {
        const verificationId = `vrf_watch_${i + 1}`;
        canceledAt.set(verificationId, performance.now());
        return otp[i % CONNECTIONS]!.cancelOtp({ verificationId }, { headers: headersOf(0) });
      }),
    ),
  );
  await Promise.all(streams);
  results.push({
    name: `${STREAMS} WatchDelivery streams on one serve (all opened in ${openSeconds} s): CancelOtp call → CANCELED on the stream; serve RSS ${rssBefore} MB → ${rssWith} MB with the streams open`,
    perSecond: cancels.perSecond,
    ...percentiles(latencies),
    errors: errors + cancels.errors,
    cpuMsPerCall: cancels.cpuMsPerCall,
  });
}

/** The README's first command's role: `dev` on PGlite (in-process bus and workers), SendOtp at saturation. */
async function devSendOtp(): Promise<LoadResult> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "otp-bench-dev-"));
  const dev = await startServiceProcess(["dev", "--data-dir", dataDir], { OTP_SENDS_PER_CALLER: "100000000/1m", OTP_SENDS_PER_DESTINATION: "100000000/1m", OTP_PUMPING_MODE: "off", OTP_SENDS_PER_NUMBER_RANGE: "off" });
  try {
    const load = await LoadGenerator.start(dev.grpcPort, CONNECTIONS);
    try {
      return await load.run({ name: "SendOtp on the embedded dev role (PGlite, in-process workers)", call: { kind: "send", callers: 0 }, ...saturation });
    } finally {
      await load.stop();
    }
  } finally {
    await dev.stop("SIGTERM");
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Resident memory of a process, in MB (Linux). */
function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
  return Math.round(kb / 1024);
}

/**
 * The peer's configuration with a sandbox email route, and a default policy whose SMS step waits an hour for its
 * receipt, longer than the codes live: the API section runs with no worker, and with the default 15 s every send it
 * measures would fall back 15 s later, so the fixed-rate measures would include `serve` escalating the saturation
 * runs' plans (hundreds a second) — work production does only for SMS that failed. (With 5 minutes, the API
 * section's ≈ 40,000 plans fell due during the scheduler section and doubled the load its lateness is measured at.)
 */
function benchConfig(file: string): string {
  const text = readFileSync(file, "utf8").replace("routes:\n", "  sandbox: { type: sandbox }\nroutes:\n");
  writeFileSync(
    file,
    [
      `${text}  - { id: sandbox-email, channel: email, provider: sandbox, traffic_class: otp, sender: no-reply@otp.invalid, countries: ["*"] }`,
      "policies:",
      "  default:",
      "    steps:",
      "      - { channel: sms, deadline: 1h, escalate_when: undelivered }",
      "      - { channel: email, deadline: 30s, escalate_when: unverified }",
      "",
    ].join("\n"),
  );
  return file;
}

/** Every pending verification's code, opened as a worker opens it (the test harness's keys): what a user would type. */
async function pendingCodes(url: string): Promise<Array<[string, string]>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string; sealed_code: string }>("select id, sealed_code from verifications where status = 'PENDING'");
    const protector = new CodeProtector(TEST_KEYS, cryptoRandom);
    return rows.map((r) => [r.id, protector.unseal(r.id, r.sealed_code)]);
  } finally {
    await client.end();
  }
}

/**
 * Polls the database until `count` attempts left the queue: DELIVERED, or (rarely, a plan that moved on while its
 * SMS waited for the worker) CANCELED unsent. Gives up (and says where they are) when none has left for 30 s: the
 * drain's length grows with how many sends the API section made.
 */
async function untilAllDelivered(url: string, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    let left = -1;
    let stalledSince = Date.now();
    for (;;) {
      const { rows } = await client.query<{ n: string }>("select count(*) as n from attempts where status in ('DELIVERED', 'CANCELED')");
      if (Number(rows[0]!.n) >= count) return;
      if (Number(rows[0]!.n) > left) [left, stalledSince] = [Number(rows[0]!.n), Date.now()];
      if (Date.now() - stalledSince > 30_000) {
        const statuses = await client.query<{ status: string; n: string }>("select status, count(*) as n from attempts group by status");
        throw new Error(`only ${rows[0]!.n} of ${count} sends delivered, none for 30 s: ${JSON.stringify(statuses.rows)}`);
      }
      await sleep(100);
    }
  } finally {
    await client.end();
  }
}

/**
 * Ten single-row writes in one transaction, pool of the service's default
 * size: what one SendOtp could cost at best. At saturation (the database
 * baseline), or at a fixed `rate` (open loop, as the fixed-rate sends).
 */
async function rawPostgres(url: string, rate?: number): Promise<LoadResult> {
  const pool = new pg.Pool({ connectionString: url, max: DEFAULT_POOL.maxConnections });
  await pool.query("create table if not exists bench_rows (id bigserial primary key, a text, b text)");
  const transaction = async () => {
    const client = await pool.connect();
    try {
      await client.query("begin");
      for (let i = 0; i < 10; i++) await client.query("insert into bench_rows (a, b) values ($1, $2)", ["x", "y"]);
      await client.query("commit");
    } finally {
      client.release();
    }
  };
  try {
    // A fixed rate has no warm-up of its own: the pool's connections opened during the measure (a backend's start,
    // its first statements' catalog lookups) set its p99 (36.6 ms at 334/s; warm, 7.2 and 17.3 ms in whole runs).
    if (rate !== undefined) await Promise.all(Array.from({ length: DEFAULT_POOL.maxConnections }, transaction));
    // Measured inside: the pool's server processes exit (taking their CPU time with them) when it ends.
    return await withCpu(() =>
      rate === undefined
        ? saturate("raw PostgreSQL: 10 single-row inserts in a transaction (database baseline)", SECONDS, CONCURRENCY, transaction)
        : atRate(`raw PostgreSQL: the baseline's transaction, fixed rate ${rate}/s (the database's tail without the service)`, rate, SECONDS, transaction),
    );
  } finally {
    await pool.end();
  }
}

/** Publishes acknowledged by a JetStream stream (file storage, like the dispatch stream's), CONCURRENCY in flight. */
async function jetStreamPublish(url: string): Promise<LoadResult> {
  const nc = await connect({ servers: url });
  try {
    await (await jetstreamManager(nc)).streams.add({ name: "BENCH", subjects: ["bench.>"] });
    const js = jetstream(nc);
    const payload = new Uint8Array(300);
    return await saturate("JetStream publish, 300 bytes, acknowledged (bus baseline)", SECONDS, CONCURRENCY, () => js.publish("bench.publish", payload));
  } finally {
    await nc.close();
  }
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function report(results: readonly LoadResult[], startMs: number): void {
  const baseline = Math.min(results[0]!.perSecond, results[1]!.perSecond);
  const lines = [
    `| measure (${SECONDS} s, ${CONNECTIONS} connections × ${IN_FLIGHT} in flight) | per second | p50 ms | p99 ms | errors | of min(baselines) |`,
    "|---|---|---|---|---|---|",
    ...results.map((r) => `| ${r.name} | ${r.perSecond} | ${Number.isNaN(r.p50Ms) ? "–" : r.p50Ms} | ${Number.isNaN(r.p99Ms) ? "–" : r.p99Ms} | ${r.errors} | ${Math.round((100 * r.perSecond) / baseline)} % |`),
  ];
  const measured = results.filter((r) => r.cpuMsPerCall !== undefined);
  // "all" sums the processes; "box busy" is the kernel's own count, a check on it. "box stolen": CPU the hypervisor
  // gave other guests while this box wanted it, the noise of a shared machine.
  // The last column is the box busy over the measure, a share of its cores: what a fixed rate's latency follows.
  lines.push("", `| CPU ms per call, by process (2 cores: ${2_000} ms of CPU per second) | ${CPU_GROUPS.join(" | ")} | all | ${BOX_FIGURES.join(" | ")} | box busy, % of its cores |`, `|---|${[...CPU_GROUPS, ...BOX_FIGURES].map(() => "---|").join("")}---|---|`);
  for (const r of measured) {
    const cpu = r.cpuMsPerCall!;
    const all = CPU_GROUPS.reduce((sum, g) => sum + (cpu[g] ?? 0), 0);
    lines.push(`| ${r.name} | ${CPU_GROUPS.map((g) => cpu[g]).join(" | ")} | ${Math.round(all * 100) / 100} | ${BOX_FIGURES.map((g) => cpu[g] ?? "–").join(" | ")} | ${r.boxBusyPercent ?? "–"} |`);
  }
  lines.push("", `serve, built (dist/), no migrations: spawn to SERVING in ${startMs} ms (median of three)`);
  process.stdout.write(`${lines.join("\n")}\n`);
  writeFileSync("bench-results.json", JSON.stringify({ at: new Date().toISOString(), quick, startMs, results }, null, 2));
  if (results.some((r) => r.errors > 0 || r.perSecond === 0)) process.exitCode = 1;
}

await main();
// The load generator's HTTP/2 sessions would keep the process alive until their idle timeout.
process.exit();
