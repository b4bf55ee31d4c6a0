import { sql } from "kysely";
import type { Executor, Trx } from "../database.js";
import type { DestinationGuardRow } from "../tables/destination-guards.js";

/**
 * Adds one to the counter of the fixed window starting at `windowStart`, and
 * returns its new count with the count of the window before it, in one statement.
 */
export async function incrementWindowCounter(trx: Trx, key: string, windowStart: Date, previousStart: Date): Promise<{ current: number; previous: number }> {
  const row = await trx
    .insertInto("rate_limit_counters")
    .values({ key, window_start: windowStart, count: 1 })
    .onConflict((oc) => oc.columns(["key", "window_start"]).doUpdateSet({ count: sql`rate_limit_counters.count + 1` }))
    .returning((eb) => [
      "count",
      eb
        .selectFrom("rate_limit_counters as before")
        .select("before.count")
        .where("before.key", "=", key)
        .where("before.window_start", "=", previousStart)
        .as("previous"),
    ])
    .executeTakeFirstOrThrow();
  return { current: row.count, previous: Number(row.previous ?? 0) };
}

export async function findDestinationGuard(db: Executor, destinationKey: string): Promise<DestinationGuardRow | undefined> {
  return db.selectFrom("destination_guards").selectAll().where("destination_key", "=", destinationKey).executeTakeFirst();
}

/** Adds one consecutive failure and returns the guard as it is now. */
export async function addDestinationFailure(trx: Trx, destinationKey: string): Promise<DestinationGuardRow> {
  return trx
    .insertInto("destination_guards")
    .values({ destination_key: destinationKey, consecutive_failures: 1, lock_count: 0, locked_until: null })
    .onConflict((oc) =>
      oc.column("destination_key").doUpdateSet({ consecutive_failures: sql`destination_guards.consecutive_failures + 1` }),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Locks a destination until `until` and starts counting failures afresh. */
export async function lockDestination(trx: Trx, destinationKey: string, until: Date): Promise<void> {
  await trx
    .updateTable("destination_guards")
    .set({ locked_until: until, consecutive_failures: 0, lock_count: sql`lock_count + 1` })
    .where("destination_key", "=", destinationKey)
    .execute();
}

/** A correct code ends the run of failures. */
export async function resetDestinationFailures(trx: Trx, destinationKey: string): Promise<void> {
  await trx.updateTable("destination_guards").set({ consecutive_failures: 0 }).where("destination_key", "=", destinationKey).execute();
}
