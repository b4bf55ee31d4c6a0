import { sql } from "kysely";
import type { Executor, Trx } from "../database.js";
import type { DestinationGuardRow } from "../tables/destination-guards.js";

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
