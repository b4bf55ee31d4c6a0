import type { Executor } from "../database.js";
import type { DestinationGuardRow } from "../tables/destination-guards.js";

export async function findDestinationGuard(db: Executor, destinationKey: string): Promise<DestinationGuardRow | undefined> {
  return db.selectFrom("destination_guards").selectAll().where("destination_key", "=", destinationKey).executeTakeFirst();
}
