import pg from "pg";
import type { Logger } from "../telemetry/logger.js";
import { errorFields } from "../telemetry/logger.js";

/** Several `serve` replicas on one database without NATS: the case this lock refuses. */
export class AnotherInstanceError extends Error {
  override readonly name = "AnotherInstanceError";
}

/**
 * Holds a session-level advisory lock named `name` on its own connection for as
 * long as the process runs, or fails at once if another process holds it.
 *
 * Used where only one process may run against a database: `serve` on the
 * in-process bus keeps its work queue in memory and re-dispatches, at start,
 * every attempt still queued — a second such process would re-dispatch the
 * first one's work and see none of its live events.
 */
export async function holdSingleInstanceLock(url: string, name: string, log: Logger): Promise<{ release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  // A lost connection (database restart) drops the lock; it must not take the process down with it.
  client.on("error", (error) => log.warn("single-instance lock connection lost", { lock: name, ...errorFields(error) }));
  await client.connect();
  const { rows } = await client.query<{ held: boolean }>("select pg_try_advisory_lock(hashtextextended($1, 0)) as held", [name]);
  if (!rows[0]?.held) {
    await client.end();
    throw new AnotherInstanceError(`another process already runs ${name} on this database`);
  }
  return { release: () => client.end().catch(() => undefined) };
}
