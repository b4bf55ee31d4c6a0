import { setTimeout as sleep } from "node:timers/promises";
import { Kysely, PostgresDialect, sql } from "kysely";
import { errorFields, type Logger } from "../telemetry/logger.js";
import { withTimeLimit } from "../util/time-limit.js";
import { openPool, type Db, type DatabaseOptions } from "./database.js";

/** Answers whether the database serves queries now. */
export interface DatabaseProbe {
  /** Resolves when a trivial query answered within the probe's time limit; rejects otherwise. */
  check(): Promise<void>;
  close(): Promise<void>;
}

const PROBE_TIMEOUT_MS = 2_000;

/**
 * A probe on a connection of its own, so a busy pool does not look like a
 * dead database (and a dead database is noticed even when the pool is idle).
 * Bounded on the client side too: a frozen server answers nothing, not even
 * a statement timeout.
 */
export function databaseProbe(options: DatabaseOptions, db: Db, log: Logger): DatabaseProbe {
  const own =
    options.kind === "postgres"
      ? new Kysely<unknown>({
          dialect: new PostgresDialect({
            pool: openPool(options.url, { maxConnections: 1, connectTimeoutMs: PROBE_TIMEOUT_MS, statementTimeoutMs: PROBE_TIMEOUT_MS, idleInTransactionTimeoutMs: PROBE_TIMEOUT_MS }, log),
          }),
        })
      : undefined;
  const target = own ?? db;
  return {
    check: async () => {
      await withTimeLimit(PROBE_TIMEOUT_MS, (timeout) =>
        Promise.race([
          sql`select 1`.execute(target),
          new Promise((_, reject) => timeout.addEventListener("abort", () => reject(new Error(`database did not answer within ${PROBE_TIMEOUT_MS} ms`)))),
        ]),
      );
    },
    close: async () => {
      await own?.destroy();
    },
  };
}

/**
 * Waits until the database answers, retrying with growing pauses (up to 5 s):
 * a process may start before its database (Kubernetes starts pods in any
 * order). Returns false if `signal` ended the wait first.
 */
export async function waitForDatabase(probe: DatabaseProbe, log: Logger, signal?: AbortSignal): Promise<boolean> {
  for (let tries = 1; !signal?.aborted; tries++) {
    try {
      await probe.check();
      if (tries > 1) log.info("database is reachable", { tries });
      return true;
    } catch (error) {
      if (tries === 1 || tries % 10 === 0) log.warn("waiting for the database", { tries, ...errorFields(error) });
      await sleep(Math.min(5_000, 250 * 2 ** Math.min(tries, 5)), undefined, signal ? { signal } : {}).catch(() => undefined);
    }
  }
  return false;
}
