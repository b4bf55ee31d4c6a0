import { sql } from "kysely";
import type { Executor } from "../database.js";
import type { NewPrefixBlockRow, PrefixBlockRow } from "../tables/prefix-blocks.js";

/**
 * Records flags; a prefix already flagged keeps its flag while it runs (every replica's detector finds the same
 * prefixes: the first one's row stands) unless the mode changed. Returns the rows this call wrote — what to report.
 */
export async function recordPrefixBlocks(db: Executor, blocks: readonly NewPrefixBlockRow[]): Promise<PrefixBlockRow[]> {
  if (blocks.length === 0) return [];
  return db
    .insertInto("prefix_blocks")
    .values([...blocks])
    .onConflict((oc) =>
      oc
        .column("prefix")
        .doUpdateSet((eb) => ({
          country: eb.ref("excluded.country"),
          mode: eb.ref("excluded.mode"),
          reason: eb.ref("excluded.reason"),
          blocked_at: eb.ref("excluded.blocked_at"),
          until: eb.ref("excluded.until"),
        }))
        .where((eb) => eb.or([eb("prefix_blocks.until", "<=", eb.ref("excluded.blocked_at")), eb("prefix_blocks.mode", "<>", eb.ref("excluded.mode"))])),
    )
    .returningAll()
    .execute();
}

/** Flags in force at `now`, in both modes. */
export async function activePrefixBlocks(db: Executor, now: Date): Promise<PrefixBlockRow[]> {
  return db.selectFrom("prefix_blocks").selectAll().where("until", ">", now).orderBy("prefix").execute();
}

/** Lifts a prefix's flag now; its earlier sends stop counting against it. Undefined when the prefix was never flagged. */
export async function releasePrefixBlock(db: Executor, prefix: string, now: Date): Promise<PrefixBlockRow | undefined> {
  return db
    .updateTable("prefix_blocks")
    .set({ released_at: now, until: sql<Date>`least(until, ${now}::timestamptz)` })
    .where("prefix", "=", prefix)
    .returningAll()
    .executeTakeFirst();
}
