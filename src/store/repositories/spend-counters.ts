import { sql } from "kysely";
import type { Trx } from "../database.js";
import type { SqlText } from "../sql-rows.js";

/** A spend added to a day's counter. */
export interface SpendIncrement {
  readonly key: string;
  readonly day: Date;
  readonly micros: number;
}

/**
 * The day's spend under each key (absent: nothing spent yet), the existing
 * rows locked in key order (bytewise, as sends count them) for the rest of
 * the transaction: a send's admission then waits for the transaction's
 * charges instead of passing the cap alongside them.
 */
export async function lockSpend(trx: Trx, keys: readonly string[], day: Date): Promise<Map<string, number>> {
  if (keys.length === 0) return new Map();
  const rows = await trx
    .selectFrom("rate_limit_counters")
    .select(["key", "count"])
    .where("key", "in", [...new Set(keys)])
    .where("window_start", "=", day)
    .orderBy(sql`key collate "C"`)
    .forUpdate()
    .execute();
  return new Map(rows.map((r) => [r.key, r.count]));
}

/** Appends the CTE `spend` adding increments to their counters, for a writer that batches its writes (see plan-moves.ts). */
export function spendIncrementsInto(statement: SqlText, increments: readonly SpendIncrement[]): SqlText {
  statement.add("spend as (\n  insert into rate_limit_counters as c (key, window_start, count)\n  select key, window_start, amount from (values ");
  increments.forEach((i, n) => {
    statement.add(n > 0 ? ", (" : "(").value(i.key).add(", ").value(i.day.toISOString()).add("::timestamptz, ").value(i.micros).add("::bigint)");
  });
  statement.add(') as i(key, window_start, amount) order by key collate "C"\n');
  return statement.add("  on conflict (key, window_start) do update set count = c.count + excluded.count\n  returning key)");
}
