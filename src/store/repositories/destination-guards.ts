import type { Executor } from "../database.js";

/** Of `keys`, those whose address is locked (after repeated wrong codes) at `now`. */
export async function lockedGuardKeys(db: Executor, keys: readonly string[], now: Date): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const rows = await db
    .selectFrom("destination_guards")
    .select("destination_key")
    .where("destination_key", "in", [...keys])
    .where("locked_until", ">", now)
    .execute();
  return new Set(rows.map((r) => r.destination_key));
}
