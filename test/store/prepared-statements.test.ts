import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_POOL, openDatabase, type Db } from "../../src/store/database.js";
import { StatementNames } from "../../src/store/prepared-statements.js";
import { migratedPostgres } from "../harness/databases.js";

describe("statement names", () => {
  it("names a text once it has run five times, and keeps that name", () => {
    const names = new StatementNames();
    const firstFour = [1, 2, 3, 4].map(() => names.nameOf("select $1"));
    expect(firstFour).toEqual([undefined, undefined, undefined, undefined]);
    const name = names.nameOf("select $1");
    expect(name).toMatch(/^otp_/);
    expect(names.nameOf("select $1")).toBe(name);
    for (let i = 0; i < 5; i++) names.nameOf("select $2");
    expect(names.nameOf("select $2")).not.toBe(name);
  });

  it("prepares at most 200 texts, however many distinct ones run often", () => {
    const names = new StatementNames();
    const named = new Set<string>();
    for (let text = 0; text < 500; text++) {
      for (let run = 0; run < 6; run++) {
        const name = names.nameOf(`select ${text} where $1`);
        if (name !== undefined) named.add(name);
      }
    }
    expect(named.size).toBe(200);
    expect(names.nameOf("select 499 where $1")).toBeUndefined();
  });
});

describe("prepared statements on PostgreSQL", () => {
  let url: string;
  let setup: Db;
  let db: Db;
  beforeAll(async () => {
    ({ url, db: setup } = await migratedPostgres());
    // One connection, so the session asked about its prepared statements is the one that ran them.
    db = await openDatabase({ kind: "postgres", url, pool: { ...DEFAULT_POOL, maxConnections: 1 } });
  });
  afterAll(async () => {
    await db?.destroy();
    await setup?.destroy();
  });

  const prepared = async () =>
    (await sql<{ statement: string }>`select statement from pg_prepared_statements`.execute(db)).rows.map((r) => r.statement);

  it("a frequently run statement is prepared once on the connection and keeps answering with the current rows", async () => {
    const count = (caller: string) =>
      sql<{ n: number }>`select count(*)::int as n from caller_balances where caller_id = ${caller}`.execute(db);
    for (let i = 0; i < 4; i++) await count("prep");
    expect((await prepared()).some((s) => s.includes("from caller_balances"))).toBe(false);

    await count("prep");
    await count("prep");
    expect((await prepared()).filter((s) => s.includes("from caller_balances"))).toHaveLength(1);

    await setup.insertInto("caller_balances").values({ caller_id: "prep", balance_micros: 5, currency: "EUR" }).execute();
    expect((await count("prep")).rows[0]!.n).toBe(1);
  });

  it("statements without parameters (DDL, transaction control) are never prepared", async () => {
    for (let i = 0; i < 10; i++) await sql`select 1`.execute(db);
    expect((await prepared()).some((s) => s.trim() === "select 1")).toBe(false);
  });
});
