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
  /** The plan each statement ran with since the last reset, with its row counts (EXPLAIN ANALYZE's JSON); only with `explain`. */
  plans(): ExecutedPlan[];
  reset(): void;
}

export interface ExecutedPlan {
  readonly "Query Text": string;
  readonly Plan: PlanNode;
}

export interface PlanNode {
  readonly "Node Type": string;
  readonly "Relation Name"?: string;
  readonly "Index Name"?: string;
  readonly "Actual Rows"?: number;
  readonly "Actual Loops"?: number;
  readonly "Rows Removed by Filter"?: number;
  readonly "Rows Removed by Index Recheck"?: number;
  readonly Plans?: readonly PlanNode[];
}

/**
 * The server's auto_explain, on for each of the pool's sessions: every statement's plan as it ran, with its row
 * counts, comes back as a notice (LOG level, which `client_min_messages` lets through to the client). The
 * statements the server runs for a statement (foreign-key checks) come too.
 */
const EXPLAIN_EACH_STATEMENT = [
  "session_preload_libraries=auto_explain",
  "auto_explain.log_min_duration=0",
  "auto_explain.log_nested_statements=on",
  "auto_explain.log_analyze=on",
  "auto_explain.log_timing=off",
  "auto_explain.log_format=json",
  "client_min_messages=log",
];

/**
 * `explain`: keep the plan each statement ran with, for `plans()` (the URL's user must be a superuser).
 * `genericPlans`: plan every statement as a cached plan is, without its parameters' values (as the server does for a
 * prepared statement after its first runs).
 */
export async function countingDatabase(url: string, options: { explain?: boolean; genericPlans?: boolean } = {}): Promise<CountingDatabase> {
  let count = 0;
  let refusals: string[] = [];
  let plans: ExecutedPlan[] = [];
  const settings = [...(options.explain ? EXPLAIN_EACH_STATEMENT : []), ...(options.genericPlans ? ["plan_cache_mode=force_generic_plan"] : [])];
  const target = settings.length > 0 ? `${url}${url.includes("?") ? "&" : "?"}options=${encodeURIComponent(settings.map((setting) => `-c ${setting}`).join(" "))}` : url;
  const pool = openPool(target, DEFAULT_POOL, silentLogger);
  pool.on("connect", (client: pg.PoolClient) => {
    if (options.explain) {
      client.on("notice", (notice) => {
        const at = notice.message?.indexOf("plan:\n") ?? -1;
        if (at >= 0) plans.push(JSON.parse(notice.message!.slice(at + "plan:\n".length)) as ExecutedPlan);
      });
    }
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as { query: unknown }).query = (...args: unknown[]) => {
      count += 1;
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
    plans: () => plans,
    reset: () => {
      count = 0;
      refusals = [];
      plans = [];
    },
  };
}
