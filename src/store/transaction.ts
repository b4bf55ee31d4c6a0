import type { Db, Trx } from "./database.js";

/** A transaction plus hooks that run only once it has committed. */
export interface UnitOfWork {
  readonly trx: Trx;
  /** Runs `hook` after commit (never on rollback). Hooks must not throw. */
  afterCommit(hook: () => void): void;
}

/**
 * Runs `work` in one transaction. Side effects that must not happen for a
 * rolled-back change (waking the outbox relay, notifying watchers) go into
 * `afterCommit`.
 */
export async function inTransaction<T>(db: Db, work: (uow: UnitOfWork) => Promise<T>): Promise<T> {
  const hooks: Array<() => void> = [];
  const result = await db.transaction().execute((trx) => work({ trx, afterCommit: (hook) => hooks.push(hook) }));
  for (const hook of hooks) hook();
  return result;
}
