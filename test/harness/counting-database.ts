import { Kysely, PostgresDialect } from "kysely";
import type pg from "pg";
import { DEFAULT_POOL, openPool, type Db } from "../../src/store/database.js";
import type { Database } from "../../src/store/tables/index.js";
import { silentLogger } from "../../src/telemetry/logger.js";

/**
 * A database whose statements are counted where they leave for the server: one
 * per round trip. `TRACE_SQL=1` prints each one (its first 110 characters) to stderr.
 */
export interface CountingDatabase {
  readonly db: Db;
  /** Statements sent (BEGIN and COMMIT included) since the last reset. */
  statements(): number;
  reset(): void;
}

export async function countingDatabase(url: string): Promise<CountingDatabase> {
  let count = 0;
  const pool = openPool(url, DEFAULT_POOL, silentLogger);
  pool.on("connect", (client: pg.PoolClient) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as { query: unknown }).query = (...args: unknown[]) => {
      count += 1;
      if (process.env.TRACE_SQL) process.stderr.write(`SQL ${String((args[0] as { text?: string }).text ?? args[0]).slice(0, 110).replace(/\s+/g, " ")}\n`);
      return query(...args);
    };
  });
  return {
    db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }),
    statements: () => count,
    reset: () => {
      count = 0;
    },
  };
}
