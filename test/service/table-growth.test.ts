import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryBus } from "../../src/bus/memory-bus.js";
import { RELAY_GRACE_MS, relayOutboxBatch } from "../../src/dispatch/outbox-relay.js";
import { RateLimitedError } from "../../src/domain/errors.js";
import { dropUnmatchedReceipts } from "../../src/receipts/parked-sweep.js";
import { pollDueReceipts } from "../../src/receipts/receipt-poller.js";
import { guardKeysFor } from "../../src/service/address-guards.js";
import { applyReceipt } from "../../src/service/attempt-lifecycle.js";
import { cancelOtp, expireDue, getVerification } from "../../src/service/end-verification.js";
import { advanceDuePlans } from "../../src/service/fallback.js";
import { DEFAULT_RETENTION, pruneOnce } from "../../src/service/retention.js";
import { DEFAULT_ROUTE_HEALTH, RouteHealthTracker } from "../../src/service/route-health.js";
import { sendOtp } from "../../src/service/send-otp.js";
import { verifyOtp } from "../../src/service/verify-otp.js";
import { watchDelivery, type EventFeed } from "../../src/service/watch-delivery.js";
import type { Db } from "../../src/store/database.js";
import { openBalance } from "../../src/store/repositories/ledger.js";
import { markPublishedByMsgId } from "../../src/store/repositories/outbox.js";
import { silentLogger } from "../../src/telemetry/logger.js";
import { countingDatabase, type CountingDatabase, type PlanNode } from "../harness/counting-database.js";
import { migratedPostgres } from "../harness/databases.js";
import { newTrace, sendCommand, serviceDeps, uniquePhone } from "../harness/service-fixture.js";
import { attemptHandler, CountingProvider, dispatchMessage } from "../harness/worker-fixture.js";

/** Copies of a finished verification's rows, as months of traffic leave them behind (retention keeps 30 days). */
const COPIES = 20_000;
/** The tables that grow with traffic. */
const GROWING = ["verifications", "attempts", "delivery_events", "outbox", "idempotency_keys", "rate_limit_counters", "destination_guards", "ledger_entries"];
/** Rows a statement may look at in one growing table: a batch's worth, far below a whole table's COPIES or a window's. */
const MAX_ROWS_LOOKED_AT = 1_000;

function* nodesOf(node: PlanNode): Generator<PlanNode> {
  yield node;
  for (const child of node.Plans ?? []) yield* nodesOf(child);
}

/**
 * The statements of every call and loop on the hot paths find their rows by
 * index, so what one costs does not grow with the tables. On real PostgreSQL,
 * as the planner's choice is what is tested: each statement's plan as it ran
 * (auto_explain) says how many rows of each table it looked at.
 *
 * With the tables' statistics taken after the copies, and with them taken
 * while the tables were small, as on a new install until autovacuum catches
 * up (and as a prepared statement's cached plan keeps them); with each
 * statement planned for its parameters' values, and planned as a cached
 * (generic) plan is, without them. With such statistics the lookups of a
 * verification by id and caller read every verification of the caller,
 * marking messages published read the whole unpublished outbox, and
 * retention's batches read whole tables; as generic plans, the scheduler's and
 * the expiry sweep's claims read whole tables. In the bench, the admission
 * read a whole window of counters (BENCHMARKS.md (24)).
 */
describe.each([
  { statistics: "taken after the copies", analyzeFirst: false, genericPlans: false },
  { statistics: "taken while the tables were small", analyzeFirst: true, genericPlans: false },
  { statistics: "taken after the copies, generic plans", analyzeFirst: false, genericPlans: true },
  { statistics: "taken while the tables were small, generic plans", analyzeFirst: true, genericPlans: true },
])("hot statements read no growing table whole, statistics $statistics", ({ analyzeFirst, genericPlans }) => {
  let db: Db;
  let counting: CountingDatabase;
  const caller = { id: "table-growth" };
  const unlimited = { sendsPerCaller: { max: 1_000_000, windowMs: 60_000 }, sendsPerNumberRange: { max: 1_000_000, windowMs: 60_000 } };

  beforeAll(async () => {
    const fresh = await migratedPostgres();
    db = fresh.db;
    counting = await countingDatabase(fresh.url, { explain: true, genericPlans });
    // The template: a metered caller's verification, delivered and approved, with a wrong code before.
    const deps = serviceDeps(db, { limits: unlimited });
    await openBalance(db, caller.id, { currency: "EUR", micros: 1_000_000_000_000 }, deps.clock.now());
    const sent = await sendOtp(deps, caller, sendCommand({ idempotencyKey: "template" }), newTrace());
    await attemptHandler(deps, new CountingProvider())(await dispatchMessage(db, sent.firstAttempt.id));
    await applyReceipt(deps, { provider: "sandbox", providerMessageId: `p-${sent.firstAttempt.id}`, status: "DELIVERED", occurredAt: deps.clock.now() });
    await verifyOtp(deps, caller, sent.verification.id, "not-it");
    // Published, as `serve` marks its messages right after their commit: what the statistics see of the outbox.
    await db.updateTable("outbox").set({ published_at: deps.clock.now() }).execute();
    if (analyzeFirst) await analyze();
    await copyRows(sent.verification.id);
    if (!analyzeFirst) await analyze();
  }, 120_000);
  afterAll(async () => {
    await counting?.db.destroy();
    await db?.destroy();
  });

  async function analyze(): Promise<void> {
    for (const table of GROWING) await sql.raw(`analyze ${table}`).execute(db);
  }

  /**
   * COPIES of every row of `template` in the growing tables, each with its own keys (foreign keys not checked).
   * The copies' outbox rows are unpublished, as a bus outage leaves them.
   */
  async function copyRows(template: string): Promise<void> {
    const copy = (table: string, changes: string, where: string, prefix = "") =>
      sql.raw(`insert into ${table} ${prefix} select (jsonb_populate_record(t, jsonb_build_object(${changes}))).* from ${table} t cross join generate_series(1, ${COPIES}) as i where ${where}`);
    const attempt = `(select id from attempts where verification_id = '${template}')`;
    await db.connection().execute(async (c) => {
      await sql`set session_replication_role = replica`.execute(c);
      await copy("verifications", "'id', 'copy-' || i", `t.id = '${template}'`).execute(c);
      await copy("attempts", "'id', 'copy-a-' || i, 'verification_id', 'copy-' || i, 'provider_message_id', 'copy-p-' || i", `t.verification_id = '${template}'`).execute(c);
      await copy("delivery_events", "'verification_id', 'copy-' || i", `t.verification_id = '${template}'`).execute(c);
      await copy("outbox", "'id', 1000000000 + i * 100 + t.id, 'msg_id', 'copy-' || i || t.msg_id, 'published_at', null", `t.msg_id like '${template}%' or t.msg_id = ${attempt}`, "overriding system value").execute(c);
      await copy("idempotency_keys", "'key', 'copy-' || i, 'verification_id', 'copy-' || i", `t.verification_id = '${template}'`).execute(c);
      await copy("rate_limit_counters", "'key', 'copy-' || i || t.key", "true").execute(c);
      await copy("destination_guards", "'destination_key', 'copy-' || i || t.destination_key", "true").execute(c);
      await copy("ledger_entries", "'entry_key', 'copy-' || i || t.entry_key", "true").execute(c);
      await sql`set session_replication_role = origin`.execute(c);
    });
    const { rows } = await sql<{ n: string }>`select count(*) as n from destination_guards`.execute(db);
    expect(Number(rows[0]!.n)).toBeGreaterThanOrEqual(COPIES);
  }

  async function codeOf(deps: ReturnType<typeof serviceDeps>, id: string): Promise<string> {
    const row = await db.selectFrom("verifications").select("sealed_code").where("id", "=", id).executeTakeFirstOrThrow();
    return deps.protector.unseal(id, row.sealed_code);
  }

  /** Each statement run since the last reset that looked at more than MAX_ROWS_LOOKED_AT rows of a growing table. */
  function wholeTableReads(): { explained: number; reads: string[] } {
    const plans = counting.plans();
    const reads: string[] = [];
    for (const plan of plans) {
      for (const node of nodesOf(plan.Plan)) {
        if (!GROWING.includes(node["Relation Name"] ?? "") || node["Node Type"] === "ModifyTable") continue;
        const looked = ((node["Actual Rows"] ?? 0) + (node["Rows Removed by Filter"] ?? 0) + (node["Rows Removed by Index Recheck"] ?? 0)) * (node["Actual Loops"] ?? 1);
        if (looked > MAX_ROWS_LOOKED_AT) reads.push(`${node["Relation Name"]} (${node["Node Type"]} ${node["Index Name"] ?? ""}, ${looked} rows): ${plan["Query Text"].trim().slice(0, 80)}`);
      }
    }
    return { explained: plans.length, reads };
  }

  it("SendOtp (and its replay), VerifyOtp, GetVerification, CancelOtp, WatchDelivery, the worker's send, a receipt, the scheduler and the expiry sweep", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    const silent: EventFeed = { subscribe: () => () => {} };
    counting.reset();
    const sent = await sendOtp(deps, caller, sendCommand({ idempotencyKey: "k1", destination: { phone: uniquePhone(), email: "growth@example.com" } }), newTrace());
    await sendOtp(deps, caller, sendCommand({ idempotencyKey: "k1", destination: { phone: "+31612345678" } }), newTrace()).catch(() => undefined);
    const id = sent.verification.id;
    const code = await codeOf(deps, id);
    expect((await verifyOtp(deps, caller, id, code === "000000" ? "111111" : "000000")).outcome).toBe("WRONG_CODE");
    await getVerification(deps, caller, id);
    for await (const item of watchDelivery(deps, silent, caller, id, 0, AbortSignal.timeout(10_000), 10_000)) if (item.kind === "event" && item.event.sequence === 2) break;
    await attemptHandler(deps, new CountingProvider())(await dispatchMessage(db, sent.firstAttempt.id));
    await applyReceipt(deps, { provider: "sandbox", providerMessageId: `p-${sent.firstAttempt.id}`, status: "UNDELIVERED", occurredAt: deps.clock.now() });
    expect(await advanceDuePlans(deps, 50)).toBe(1);
    expect((await verifyOtp(deps, caller, id, code)).outcome).toBe("APPROVED");
    const canceled = await sendOtp(deps, caller, sendCommand(), newTrace());
    await cancelOtp(deps, caller, canceled.verification.id);
    await sendOtp(deps, caller, sendCommand({ ttlMs: 60_000 }), newTrace());
    deps.clock.advance(60_000);
    expect(await expireDue(deps)).toBe(1);

    const { explained, reads } = wholeTableReads();
    expect(explained).toBeGreaterThanOrEqual(20);
    expect(reads).toEqual([]);
  });

  it("the periodic loops and the outbox: marking published messages, the outbox relay, receipt polling, route health, the parked receipts' sweep and retention", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    const { verification } = await sendOtp(deps, caller, sendCommand(), newTrace());
    const written = await db.selectFrom("outbox").select("msg_id").where("msg_id", "like", `${verification.id}%`).execute();
    deps.clock.advance(RELAY_GRACE_MS + 1);
    counting.reset();
    // What `serve` does after each commit: the messages it published at once, marked so.
    await markPublishedByMsgId(counting.db, written.map((r) => r.msg_id), deps.clock.now());
    expect(await relayOutboxBatch(counting.db, new MemoryBus({ workQueueSubjects: [] }), deps.clock, 100)).toBeGreaterThanOrEqual(3);
    const silentProvider = { provider: "sandbox", intervalMs: 60_000, poll: async () => undefined };
    await pollDueReceipts(deps, new Map([["sandbox", silentProvider]]), silentLogger, 100);
    await new RouteHealthTracker(counting.db, deps.clock, DEFAULT_ROUTE_HEALTH).refresh();
    await dropUnmatchedReceipts(counting.db, deps.clock, 60_000, silentLogger);
    await pruneOnce(counting.db, deps.clock, DEFAULT_RETENTION, 100);

    const { explained, reads } = wholeTableReads();
    expect(explained).toBeGreaterThanOrEqual(8);
    expect(reads).toEqual([]);
  });

  it("and the lookups still find their rows: a locked address refuses sends and codes, and an approval ends its run of wrong codes", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    const phone = uniquePhone();
    const [key] = guardKeysFor(deps.protector, caller.id, [phone]);
    const { verification } = await sendOtp(deps, caller, sendCommand({ destination: { phone } }), newTrace());
    const code = await codeOf(deps, verification.id);
    const wrong = code === "000000" ? "111111" : "000000";
    expect((await verifyOtp(deps, caller, verification.id, wrong)).outcome).toBe("WRONG_CODE");
    const run = () => db.selectFrom("destination_guards").select("consecutive_failures").where("destination_key", "=", key!).executeTakeFirstOrThrow();
    expect((await run()).consecutive_failures).toBe(1);

    await db.updateTable("destination_guards").set({ locked_until: new Date(deps.clock.now().getTime() + 3_600_000) }).where("destination_key", "=", key!).execute();
    await expect(sendOtp(deps, caller, sendCommand({ destination: { phone } }), newTrace())).rejects.toThrow(RateLimitedError);
    expect((await verifyOtp(deps, caller, verification.id, wrong)).outcome).toBe("MAX_ATTEMPTS");
    // The right code approves even while the address is locked, and ends its run of wrong codes.
    expect((await verifyOtp(deps, caller, verification.id, code)).outcome).toBe("APPROVED");
    expect((await run()).consecutive_failures).toBe(0);
  });

  it("an idempotency key among many is still found: a replay answers with the first send's verification", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    const command = sendCommand({ idempotencyKey: "growth-replay" });
    const first = await sendOtp(deps, caller, command, newTrace());
    expect((await sendOtp(deps, caller, command, newTrace())).verification.id).toBe(first.verification.id);
  });
});
