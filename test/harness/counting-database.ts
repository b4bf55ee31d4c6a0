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
  /** The SQLSTATE of each statement the server refused since the last reset (a retried deadlock's 40P01 among them). */
  refusals(): string[];
  /** Each statement sent since the last reset, with its parameters (to EXPLAIN it); only with `record`. */
  sent(): SentStatement[];
  reset(): void;
}

export interface SentStatement {
  readonly text: string;
  readonly values: readonly unknown[];
}

/** `record`: keep each statement sent, for `sent()` (off by default: race tests send hundreds of thousands). */
export async function countingDatabase(url: string, options: { record?: boolean } = {}): Promise<CountingDatabase> {
  let count = 0;
  let refusals: string[] = [];
  let sent: SentStatement[] = [];
  const pool = openPool(url, DEFAULT_POOL, silentLogger);
  pool.on("connect", (client: pg.PoolClient) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as { query: unknown }).query = (...args: unknown[]) => {
      count += 1;
      if (options.record) {
        // Kysely sends text and values; a prepared statement goes as one object holding both.
        const config = (typeof args[0] === "string" ? { text: args[0], values: args[1] } : args[0]) as { text: string; values?: unknown[] };
        sent.push({ text: config.text, values: config.values ?? [] });
      }
      if (process.env.TRACE_SQL) process.stderr.write(`SQL ${String((args[0] as { text?: string }).text ?? args[0]).slice(0, 110).replace(/\s+/g, " ")}\n`);
      const result = query(...args);
      // Seen, not handled: the caller still gets the rejection.
      if (result instanceof Promise) result.catch((error: { code?: string }) => refusals.push(error.code ?? "unknown"));
      return result;
    };
  });
  return {
    db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }),
    statements: () => count,
    refusals: () => refusals,
    sent: () => sent,
    reset: () => {
      count = 0;
      refusals = [];
      sent = [];
    },
  };
}
