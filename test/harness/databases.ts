import { inject } from "vitest";
import { migrateToLatest, openDatabase, type Db } from "../../src/store/database.js";
import { createTestDatabase } from "./postgres.js";

export interface Backend {
  readonly name: "postgres" | "pglite";
  /** A migrated, empty database of this kind. */
  open(): Promise<Db>;
}

/** Both database backends; store and service suites run against each. */
export const BACKENDS: readonly Backend[] = [
  {
    name: "postgres",
    open: async () => (await migratedPostgres()).db,
  },
  {
    name: "pglite",
    open: async () => {
      const db = await openDatabase({ kind: "pglite" });
      await migrateToLatest(db);
      return db;
    },
  },
];

/** A migrated, empty database on the shared test server, with its URL (for a second connection or a process). */
export async function migratedPostgres(): Promise<{ url: string; db: Db }> {
  const url = await createTestDatabase(inject("pgAdminUrl"));
  const db = await openDatabase({ kind: "postgres", url });
  await migrateToLatest(db);
  return { url, db };
}

/** Every text value in every table, for "the code is nowhere" assertions. */
export async function dumpAllText(db: Db): Promise<string> {
  const tables = ["verifications", "attempts", "delivery_events", "outbox", "idempotency_keys", "rate_limit_counters", "destination_guards", "parked_receipts"] as const;
  const parts: string[] = [];
  for (const table of tables) {
    const rows = await db.selectFrom(table).selectAll().execute();
    parts.push(JSON.stringify(rows));
    // Outbox payloads are base64: look inside them too.
    if (table === "outbox") for (const row of rows as Array<{ payload: string }>) parts.push(Buffer.from(row.payload, "base64").toString("latin1"));
  }
  return parts.join("\n");
}
