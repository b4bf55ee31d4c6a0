import { setTimeout as sleep } from "node:timers/promises";
import { UnavailableError } from "../domain/errors.js";
import type { Db, Trx } from "./database.js";

/** A transaction plus hooks that run only once it has committed. */
export interface UnitOfWork {
  readonly trx: Trx;
  /** Runs `hook` after commit (never on rollback). Hooks must not throw. */
  afterCommit(hook: () => void): void;
  /**
   * The last event number of each verification this transaction holds the
   * lock of and has read (see `holdsVerification` in service/events.ts).
   */
  readonly eventSequences: Map<string, number>;
}

/** SQLSTATEs of a transaction PostgreSQL rolled back for a conflict with another one: running it again may succeed. */
const CONFLICT_SQLSTATES = new Set(["40P01" /* deadlock_detected */, "40001" /* serialization_failure */]);
/** Tries of one transaction before a conflict is reported as UNAVAILABLE (retryable by the client). */
export const TRANSACTION_TRIES = 4;

/**
 * Runs `work` in one transaction. Side effects that must not happen for a
 * rolled-back change (waking the outbox relay, notifying watchers) go into
 * `afterCommit`. A transaction aborted for a conflict is run again, as `retryConflicts` says.
 */
export async function inTransaction<T>(db: Db, work: (uow: UnitOfWork) => Promise<T>): Promise<T> {
  return retryConflicts(async () => {
    const hooks: Array<() => void> = [];
    const result = await db.transaction().execute((trx) => work({ trx, afterCommit: (hook) => hooks.push(hook), eventSequences: new Map() }));
    for (const hook of hooks) hook();
    return result;
  });
}

/**
 * Runs `work` (a transaction, or one autocommitted statement) again when
 * PostgreSQL aborts it for a deadlock or a serialization failure (`work` must
 * therefore be safe to re-run: it is, when it only writes through the database),
 * after a short random pause, up to TRANSACTION_TRIES times; then it fails with UnavailableError.
 */
export async function retryConflicts<T>(work: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await work();
    } catch (error) {
      if (!isConflict(error)) throw error;
      if (tries >= TRANSACTION_TRIES) throw new UnavailableError("the database kept aborting this change for conflicting ones; retry", { cause: error });
      // Randomised, growing pause, so the transactions that collided do not collide again in step.
      await sleep(Math.random() * 10 * 2 ** tries);
    }
  }
}

export function isConflict(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && CONFLICT_SQLSTATES.has(code);
}
