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
import { writeFileSync } from "node:fs";
import pg from "pg";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { OtpService } from "../gen/otp/v1/otp_service_pb.js";
import { startNats } from "../test/harness/nats.js";
import { createTestDatabase, startPostgres } from "../test/harness/postgres.js";
import { startServeProcess, startWorkerProcess, type ServiceProcess } from "../test/harness/service-process.js";
import { HttpRoutePeer } from "../test/peers/http-route-peer.js";
import { clients, saturate, type LoadResult } from "./load.js";

const quick = process.argv.includes("--quick");
const SECONDS = quick ? 2 : 10;
const CONNECTIONS = 4;
const IN_FLIGHT = 16;
const TOKEN = "bench-token";
const headers = { authorization: `Bearer ${TOKEN}` };

async function main(): Promise<void> {
  const postgres = await startPostgres();
  const nats = await startNats();
  const peer = await HttpRoutePeer.start({ apiKey: "bench-key", webhookSecret: "bench-secret" });
  const processes: ServiceProcess[] = [];
  try {
    const databaseUrl = await createTestDatabase(postgres.adminUrl);
    const unlimited = { OTP_SENDS_PER_CALLER: "100000000/1m", OTP_SENDS_PER_DESTINATION: "100000000/1m" };
    const options = { databaseUrl, natsUrl: nats.url, configFile: peer.writeConfigFile("5s"), env: unlimited };
    const serve = await startServeProcess({ ...options, token: TOKEN });
    processes.push(serve);
    peer.webhookUrl = `http://127.0.0.1:${serve.httpPort}/webhooks/dlr/bridgex`;
    processes.push(await startWorkerProcess({ ...options, channels: "sms" }));

    const concurrency = CONNECTIONS * IN_FLIGHT;
    const health = clients(Health, serve.grpcPort, CONNECTIONS);
    const otp = clients(OtpService, serve.grpcPort, CONNECTIONS);
    const results: LoadResult[] = [];
    results.push(await saturate("grpc.health.v1 Check (transport baseline)", SECONDS, concurrency, (w) => health[w % CONNECTIONS]!.check({})));
    results.push(await rawPostgres(databaseUrl, concurrency));
    let phone = 0;
    const ids: string[] = [];
    results.push(
      await saturate("SendOtp, one caller", SECONDS, concurrency, async (w) => {
        const sent = await otp[w % CONNECTIONS]!.sendOtp({ destination: { phone: `+3165${String(++phone).padStart(7, "0")}` } }, { headers });
        ids.push(sent.verificationId);
      }),
    );
    let next = 0;
    results.push(await saturate("VerifyOtp, wrong code", SECONDS, concurrency, (w) => otp[w % CONNECTIONS]!.verifyOtp({ verificationId: ids[next++ % ids.length]!, code: "000000" }, { headers })));
    report(results);
  } finally {
    for (const p of processes) await p.stop("SIGTERM");
    await peer.stop();
    await nats.stop();
    await postgres.stop();
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

function report(results: readonly LoadResult[]): void {
  const baseline = Math.min(results[0]!.perSecond, results[1]!.perSecond);
  const lines = [
    `| measure (${SECONDS} s, ${CONNECTIONS} connections × ${IN_FLIGHT} in flight) | per second | p50 ms | p99 ms | errors | of min(baselines) |`,
    "|---|---|---|---|---|---|",
    ...results.map((r) => `| ${r.name} | ${r.perSecond} | ${r.p50Ms} | ${r.p99Ms} | ${r.errors} | ${Math.round((100 * r.perSecond) / baseline)} % |`),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  writeFileSync("bench-results.json", JSON.stringify({ at: new Date().toISOString(), quick, results }, null, 2));
  if (results.some((r) => r.errors > 0 || r.perSecond === 0)) process.exitCode = 1;
}

await main();
