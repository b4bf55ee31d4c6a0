import { sql } from "kysely";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Db } from "../../src/store/database.js";
import { migratedPostgres } from "../harness/databases.js";

let db: Db;
beforeAll(async () => {
  ({ db } = await migratedPostgres());
});
afterAll(async () => {
  await db?.destroy();
});

// Every index is maintained by every write of its table's rows: on the send path that is CPU per SendOtp.
it("no index duplicates another (same table, columns, method and condition)", async () => {
  const { rows } = await sql<{ table: string; indexes: string[] }>`
    select i.indrelid::regclass::text as table, array_agg(i.indexrelid::regclass::text order by i.indexrelid::regclass::text) as indexes
    from pg_index i join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public'
    group by i.indrelid, i.indkey::text, c.relam, coalesce(pg_get_expr(i.indpred, i.indrelid), ''), coalesce(pg_get_expr(i.indexprs, i.indrelid), '')
    having count(*) > 1`.execute(db);
  expect(rows).toEqual([]);
});
