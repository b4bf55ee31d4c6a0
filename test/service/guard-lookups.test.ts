import { sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateLimitedError } from "../../src/domain/errors.js";
import { guardKeysFor } from "../../src/service/address-guards.js";
import { sendOtp } from "../../src/service/send-otp.js";
import { verifyOtp } from "../../src/service/verify-otp.js";
import type { Db } from "../../src/store/database.js";
import { countingDatabase, type CountingDatabase } from "../harness/counting-database.js";
import { migratedPostgres } from "../harness/databases.js";
import { newTrace, sendCommand, serviceDeps, uniquePhone } from "../harness/service-fixture.js";

/** Addresses that once had a wrong code: the table only grows with traffic. */
const GUARDS = 20_000;

interface PlanNode {
  readonly "Node Type": string;
  readonly "Relation Name"?: string;
  readonly Plans?: readonly PlanNode[];
}

function* nodesOf(node: PlanNode): Generator<PlanNode> {
  yield node;
  for (const child of node.Plans ?? []) yield* nodesOf(child);
}

/**
 * The sends' and code checks' statements look up their own addresses' guards
 * by key, so their cost does not grow with the table. On real PostgreSQL, with
 * the table's statistics: the planner's choice is what is tested.
 */
describe("destination guards found by key, however many addresses have one", () => {
  let db: Db;
  let counting: CountingDatabase;
  let explainer: pg.Client;
  beforeAll(async () => {
    const fresh = await migratedPostgres();
    db = fresh.db;
    counting = await countingDatabase(fresh.url);
    explainer = new pg.Client({ connectionString: fresh.url });
    await explainer.connect();
    await sql`insert into destination_guards (destination_key, consecutive_failures, lock_count) select md5(i::text), 1, 0 from generate_series(1, ${GUARDS}) as i`.execute(db);
    await sql`analyze destination_guards`.execute(db);
  });
  afterAll(async () => {
    await explainer?.end();
    await counting?.db.destroy();
    await db?.destroy();
  });

  const unlimited = { sendsPerCaller: { max: 1_000_000, windowMs: 60_000 }, sendsPerNumberRange: { max: 1_000_000, windowMs: 60_000 } };
  const caller = { id: "guard-lookups" };

  async function codeOf(deps: ReturnType<typeof serviceDeps>, id: string): Promise<string> {
    const row = await db.selectFrom("verifications").select("sealed_code").where("id", "=", id).executeTakeFirstOrThrow();
    return deps.protector.unseal(id, row.sealed_code);
  }

  /** The plan nodes of every statement sent since the last reset that reads the whole guards table. */
  async function guardTableScans(): Promise<{ checked: number; scans: string[] }> {
    const statements = counting.sent().filter((s) => s.text.includes("destination_guards"));
    const scans: string[] = [];
    for (const statement of statements) {
      const { rows } = await explainer.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(`explain (format json) ${statement.text}`, [...statement.values]);
      for (const node of nodesOf(rows[0]!["QUERY PLAN"][0]!.Plan)) {
        if (node["Relation Name"] === "destination_guards" && node["Node Type"] === "Seq Scan") scans.push(statement.text.slice(0, 80));
      }
    }
    return { checked: statements.length, scans };
  }

  it("SendOtp and VerifyOtp (a wrong code, then the right one) read their own addresses' guards only", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    const { verification } = await sendOtp(deps, caller, sendCommand(), newTrace());
    const code = await codeOf(deps, verification.id);
    counting.reset();
    await sendOtp(deps, caller, sendCommand(), newTrace());
    expect((await verifyOtp(deps, caller, verification.id, code === "000000" ? "111111" : "000000")).outcome).toBe("WRONG_CODE");
    expect((await verifyOtp(deps, caller, verification.id, code)).outcome).toBe("APPROVED");
    const { checked, scans } = await guardTableScans();
    // The send's admission, each check's read, the wrong code's count and the approval's reset of the run.
    expect(checked).toBeGreaterThanOrEqual(5);
    expect(scans).toEqual([]);
  });

  it("and still find them: a locked address refuses sends and codes, and an approval ends its run of wrong codes", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    const phone = uniquePhone();
    const [key] = guardKeysFor(deps.protector, caller.id, [phone]);
    const { verification } = await sendOtp(deps, caller, sendCommand({ destination: { phone } }), newTrace());
    const code = await codeOf(deps, verification.id);
    expect((await verifyOtp(deps, caller, verification.id, code === "000000" ? "111111" : "000000")).outcome).toBe("WRONG_CODE");
    const run = () => db.selectFrom("destination_guards").select("consecutive_failures").where("destination_key", "=", key!).executeTakeFirstOrThrow();
    expect((await run()).consecutive_failures).toBe(1);

    await db.updateTable("destination_guards").set({ locked_until: new Date(deps.clock.now().getTime() + 3_600_000) }).where("destination_key", "=", key!).execute();
    await expect(sendOtp(deps, caller, sendCommand({ destination: { phone } }), newTrace())).rejects.toThrow(RateLimitedError);
    expect((await verifyOtp(deps, caller, verification.id, code === "999999" ? "888888" : "999999")).outcome).toBe("MAX_ATTEMPTS");
    // The right code approves even while the address is locked, and ends its run of wrong codes.
    expect((await verifyOtp(deps, caller, verification.id, code)).outcome).toBe("APPROVED");
    expect((await run()).consecutive_failures).toBe(0);
  });
});
