import { Code } from "@connectrpc/connect";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toConnectError } from "../../src/api/error-mapping.js";
import { UnavailableError } from "../../src/domain/errors.js";
import type { Db } from "../../src/store/database.js";
import { inTransaction, TRANSACTION_TRIES } from "../../src/store/transaction.js";
import { BACKENDS } from "../harness/databases.js";

/** Real PostgreSQL: its deadlock detector and serialization failures are what is under test. */
const postgres = BACKENDS.find((b) => b.name === "postgres")!;

describe("transactions on real PostgreSQL", () => {
  let db: Db;
  beforeAll(async () => {
    db = await postgres.open();
    await sql`create table contended (id int primary key, n int not null)`.execute(db);
    await sql`insert into contended values (1, 0), (2, 0)`.execute(db);
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it("runs a transaction PostgreSQL aborted as a deadlock victim again, and both sides commit", async () => {
    // Two transactions take rows 1 and 2 in opposite orders, each waiting for the other to hold its first row.
    let firstLocks = 0;
    let bothHoldOne!: () => void;
    const barrier = new Promise<void>((resolve) => (bothHoldOne = resolve));
    const runs = { a: 0, b: 0 };
    const bump = (side: "a" | "b", first: number, second: number) =>
      inTransaction(db, async ({ trx }) => {
        runs[side] += 1;
        await sql`update contended set n = n + 1 where id = ${first}`.execute(trx);
        if (runs.a + runs.b <= 2) {
          if (++firstLocks === 2) bothHoldOne();
          await barrier;
        }
        await sql`update contended set n = n + 1 where id = ${second}`.execute(trx);
      });
    await Promise.all([bump("a", 1, 2), bump("b", 2, 1)]);
    expect(runs.a + runs.b).toBe(3); // exactly one of them was the victim, and ran again
    const rows = await sql<{ n: number }>`select n from contended order by id`.execute(db);
    expect(rows.rows.map((r) => r.n)).toEqual([2, 2]);
  });

  it("reports a conflict that persists as UnavailableError, which callers see as UNAVAILABLE", async () => {
    let runs = 0;
    const failing = inTransaction(db, async ({ trx }) => {
      runs += 1;
      await sql`do $$ begin raise exception 'conflict' using errcode = 'serialization_failure'; end $$`.execute(trx);
    });
    const error = await failing.then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect(runs).toBe(TRANSACTION_TRIES);
    expect(toConnectError(error).code).toBe(Code.Unavailable);
  });

  it("does not run again a transaction that failed for any other reason", async () => {
    let runs = 0;
    const failing = inTransaction(db, async ({ trx }) => {
      runs += 1;
      await sql`insert into contended values (1, 0)`.execute(trx);
    });
    await expect(failing).rejects.toMatchObject({ code: "23505" });
    expect(runs).toBe(1);
  });
});
