/**
 * npm run bench [-- --quick]
 *
 * `serve` and `worker` as processes on real PostgreSQL and nats-server (the
 * test harness starts them on loopback, throwaway data), an SMS API peer on
 * loopback, and a load generator in this process over several HTTP/2
 * connections. Baselines are measured in the same run, on the same box:
 * grpc.health.v1 Check on the same port, and a raw PostgreSQL transaction of
 * ten single-row writes through a pool like the service's.
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { DeliveryEventKind } from "../gen/otp/v1/common_pb.js";
import { OtpService } from "../gen/otp/v1/otp_service_pb.js";
import { startNats } from "../test/harness/nats.js";
import { createTestDatabase, startPostgres } from "../test/harness/postgres.js";
import { startServeProcess, startWorkerProcess, type ServiceProcess } from "../test/harness/service-process.js";
import { HttpRoutePeer } from "../test/peers/http-route-peer.js";
import { clients, saturate, type LoadResult } from "./load.js";

const quick = process.argv.includes("--quick");
const SECONDS = quick ? 1 : 10;
const CONNECTIONS = 4;
const IN_FLIGHT = 16;

const CALLERS = 100;
/** Due plans for the scheduler's drain. */
const PLANS = quick ? 1_000 : 100_000;
const tokenOf = (caller: number) => `bench-token-${caller}`;
const headersOf = (caller: number) => ({ authorization: `Bearer ${tokenOf(caller)}` });

async function main(): Promise<void> {
  const postgres = await startPostgres();
  const nats = await startNats();
  const peer = await HttpRoutePeer.start({ apiKey: "bench-key", webhookSecret: "bench-secret" });
  const processes: ServiceProcess[] = [];
  try {
    const databaseUrl = await createTestDatabase(postgres.adminUrl);
    const env = {
      OTP_SENDS_PER_CALLER: "100000000/1m",
      OTP_SENDS_PER_DESTINATION: "100000000/1m",
      OTP_CALLERS: Array.from({ length: CALLERS }, (_, i) => `bench-${i}:${sha256(tokenOf(i))}`).join(","),
    };
    const options = { databaseUrl, natsUrl: nats.url, configFile: withSandboxEmail(peer.writeConfigFile("5s")), env };
    const serve = await startServeProcess(options);
    processes.push(serve);
    peer.webhookUrl = `http://127.0.0.1:${serve.httpPort}/webhooks/dlr/bridgex`;

    // A second serve on the migrated database: the compiled binary's start, from spawn to SERVING.
    const startAt = performance.now();
    const second = await startServeProcess({ ...options, env: { ...env, OTP_MIGRATE_ON_START: "false" } });
    const startMs = Math.round(performance.now() - startAt);
    await second.stop("SIGTERM");

    const concurrency = CONNECTIONS * IN_FLIGHT;
    const health = clients(Health, serve.grpcPort, CONNECTIONS);
    const otp = clients(OtpService, serve.grpcPort, CONNECTIONS);
    const results: LoadResult[] = [];
    results.push(await saturate("grpc.health.v1 Check (transport baseline)", SECONDS, concurrency, (w) => health[w % CONNECTIONS]!.check({})));
    results.push(await rawPostgres(databaseUrl, concurrency));

    // The API alone: no worker yet, so the box's two cores serve SendOtp (and the outbox relay) only.
    // The dispatches queue up in JetStream for the worker's drain below.
    let phone = 0;
    const nextPhone = () => `+3165${String(++phone).padStart(7, "0")}`;
    const ids: Array<[string, number]> = [];
    results.push(
      await saturate("SendOtp, one caller (no worker running)", SECONDS, concurrency, async (w) => {
        const sent = await otp[w % CONNECTIONS]!.sendOtp({ destination: { phone: nextPhone() } }, { headers: headersOf(0) });
        ids.push([sent.verificationId, 0]);
      }),
    );
    results.push(
      await saturate(`SendOtp, ${CALLERS} callers (no worker running)`, SECONDS, concurrency, async (w) => {
        const caller = (phone + w) % CALLERS;
        const sent = await otp[w % CONNECTIONS]!.sendOtp({ destination: { phone: nextPhone() } }, { headers: headersOf(caller) });
        ids.push([sent.verificationId, caller]);
      }),
    );
    let next = 0;
    results.push(
      await saturate("VerifyOtp, wrong code", SECONDS, concurrency, (w) => {
        const [verificationId, caller] = ids[next++ % ids.length]!;
        return otp[w % CONNECTIONS]!.verifyOtp({ verificationId, code: "000000" }, { headers: headersOf(caller) });
      }),
    );

    // The worker starts with every send above queued: how fast it drains them to DELIVERED.
    const queued = ids.length;
    const drainStarted = performance.now();
    processes.push(await startWorkerProcess({ ...options, channels: "sms" }));
    await untilAllDelivered(databaseUrl, queued);
    const drainSeconds = (performance.now() - drainStarted) / 1000;
    results.push({ name: `worker drain: ${queued} queued sends to DELIVERED (start included)`, perSecond: Math.round(queued / drainSeconds), p50Ms: NaN, p99Ms: NaN, errors: 0 });

    // Complete flows: SendOtp, the provider request, its signed receipt, and the DELIVERED event on a WatchDelivery stream.
    results.push(
      await saturate("complete flow: SendOtp → provider → receipt → DELIVERED on WatchDelivery", SECONDS, concurrency, async (w) => {
        const client = otp[w % CONNECTIONS]!;
        const caller = w % CALLERS;
        const sent = await client.sendOtp({ destination: { phone: nextPhone() } }, { headers: headersOf(caller) });
        for await (const message of client.watchDelivery({ verificationId: sent.verificationId }, { headers: headersOf(caller), timeoutMs: 30_000 })) {
          if (message.event?.kind === DeliveryEventKind.ATTEMPT_DELIVERED) return;
        }
        throw new Error(`stream of ${sent.verificationId} ended without DELIVERED`);
      }),
    );
    // The fallback scheduler: PLANS verifications whose SMS step went unanswered, all due at once
    // (as after a provider or NATS outage), moved on to their email step by the one serve.
    const template = await otp[0]!.sendOtp({ destination: { phone: nextPhone(), email: "drain@example.com" } }, { headers: headersOf(0) });
    const drainMs = await schedulerDrain(databaseUrl, template.verificationId, PLANS);
    results.push({ name: `fallback scheduler: ${PLANS} due plans escalated (one serve)`, perSecond: Math.round(PLANS / (drainMs / 1000)), p50Ms: NaN, p99Ms: NaN, errors: 0 });
    report(results, startMs);
  } finally {
    for (const p of processes) await p.stop("SIGTERM");
    await peer.stop();
    await nats.stop();
    await postgres.stop();
  }
}

/** The routing file with a sandbox email route added, so plans have a step to fall back to (no email worker runs). */
function withSandboxEmail(file: string): string {
  const text = readFileSync(file, "utf8").replace("routes:\n", "  sandbox: { type: sandbox }\nroutes:\n");
  writeFileSync(file, `${text}  - { id: sandbox-email, channel: email, provider: sandbox, traffic_class: otp, sender: no-reply@otp.invalid, countries: ["*"] }\n`);
  return file;
}

/**
 * Copies `template` (an SMS → email plan) `plans` times as verifications whose
 * SMS attempt was submitted long ago without a receipt and whose next look is
 * due, then times the scheduler until none is due any more.
 */
async function schedulerDrain(url: string, template: string, plans: number): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("begin");
    await client.query(
      `insert into verifications select (jsonb_populate_record(null::verifications, to_jsonb(v) || jsonb_build_object(
         'id', 'vrf_drain_' || g, 'created_at', now() - interval '1 minute', 'expires_at', now() + interval '10 minutes', 'next_step_at', now() - interval '1 second'))).*
       from verifications v, generate_series(1, $2::int) g where v.id = $1`,
      [template, plans],
    );
    await client.query(
      `insert into attempts select (jsonb_populate_record(null::attempts, to_jsonb(a) || jsonb_build_object(
         'id', 'att_drain_' || g, 'verification_id', 'vrf_drain_' || g, 'status', 'SUBMITTED', 'provider_message_id', 'drain-' || g,
         'created_at', now() - interval '1 minute', 'submitted_at', now() - interval '1 minute'))).*
       from attempts a, generate_series(1, $2::int) g where a.verification_id = $1`,
      [template, plans],
    );
    await client.query("commit");
    const started = performance.now();
    const deadline = Date.now() + 600_000;
    for (;;) {
      const { rows } = await client.query<{ n: string }>("select count(*) as n from verifications where id like 'vrf_drain_%' and current_step = 0");
      if (Number(rows[0]!.n) === 0) return performance.now() - started;
      if (Date.now() > deadline) throw new Error(`${rows[0]!.n} of ${plans} plans still due after ten minutes`);
      await sleep(100);
    }
  } finally {
    await client.end();
  }
}

/** Polls the database until `count` attempts are DELIVERED; bounded at two minutes (then says where they are). */
async function untilAllDelivered(url: string, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const { rows } = await client.query<{ n: string }>("select count(*) as n from attempts where status = 'DELIVERED'");
      if (Number(rows[0]!.n) >= count) return;
      if (Date.now() > deadline) {
        const statuses = await client.query<{ status: string; n: string }>("select status, count(*) as n from attempts group by status");
        throw new Error(`only ${rows[0]!.n} of ${count} sends delivered after two minutes: ${JSON.stringify(statuses.rows)}`);
      }
      await sleep(100);
    }
  } finally {
    await client.end();
  }
}

/** Ten single-row writes in one transaction, pool of the service's default size: what one SendOtp could cost at best. */
async function rawPostgres(url: string, concurrency: number): Promise<LoadResult> {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  await pool.query("create table bench_rows (id bigserial primary key, a text, b text)");
  try {
    return await saturate("raw PostgreSQL: 10 single-row inserts in a transaction (database baseline)", SECONDS, concurrency, async () => {
      const client = await pool.connect();
      try {
        await client.query("begin");
        for (let i = 0; i < 10; i++) await client.query("insert into bench_rows (a, b) values ($1, $2)", ["x", "y"]);
        await client.query("commit");
      } finally {
        client.release();
      }
    });
  } finally {
    await pool.end();
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
  lines.push("", `serve, compiled (dist/), no migrations: spawn to SERVING in ${startMs} ms`);
  process.stdout.write(`${lines.join("\n")}\n`);
  writeFileSync("bench-results.json", JSON.stringify({ at: new Date().toISOString(), quick, startMs, results }, null, 2));
  if (results.some((r) => r.errors > 0 || r.perSecond === 0)) process.exitCode = 1;
}

await main();
