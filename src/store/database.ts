import { Kysely, Migrator, PostgresDialect, type Transaction } from "kysely";
import pg from "pg";
import { migrationProvider } from "./migrations/index.js";
import { PGliteDialect } from "./pglite-dialect.js";
import { preparingClient, StatementNames } from "./prepared-statements.js";
import type { Database } from "./tables/index.js";
import { errorFields, silentLogger, type Logger } from "../telemetry/logger.js";

export type Db = Kysely<Database>;
export type Trx = Transaction<Database>;
/** Either the database or an open transaction: repositories accept both. */
export type Executor = Db | Trx;

/** How the PostgreSQL pool waits and how long statements may run: together they bound a call's time on the database. */
export interface PoolSettings {
  /** Connections per process. */
  readonly maxConnections: number;
  /** Longest wait for a pooled connection, or for a new one to open. */
  readonly connectTimeoutMs: number;
  /** Server-side limit on one statement (lock waits included). */
  readonly statementTimeoutMs: number;
  /** The server ends a session idle inside a transaction this long (a stuck client cannot hold locks forever). */
  readonly idleInTransactionTimeoutMs: number;
}

export const DEFAULT_POOL: PoolSettings = {
  maxConnections: 10,
  connectTimeoutMs: 3_000,
  statementTimeoutMs: 5_000,
  idleInTransactionTimeoutMs: 10_000,
};

export type DatabaseOptions =
  | { readonly kind: "postgres"; readonly url: string; readonly pool?: PoolSettings }
  /** `dataDir` undefined keeps the database in memory (tests). */
  | { readonly kind: "pglite"; readonly dataDir?: string };

const INT8_OID = 20;

/**
 * Opens the database. Both drivers return the same JavaScript types: int8 and
 * count(*) as numbers (pg would return strings; our counters and micros stay
 * far below 2^53), timestamptz as Date, jsonb parsed.
 */
export async function openDatabase(options: DatabaseOptions, log: Logger = silentLogger): Promise<Db> {
  if (options.kind === "postgres") return new Kysely<Database>({ dialect: new PostgresDialect({ pool: openPool(options.url, options.pool ?? DEFAULT_POOL, log) }) });
  // Only the embedded database loads PGlite: a role on PostgreSQL starts without it.
  const { PGlite } = await import("@electric-sql/pglite");
  const pglite = options.dataDir === undefined ? await PGlite.create() : await PGlite.create(options.dataDir);
  return new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
}

/**
 * A pg pool that survives the database going away. The server ending a
 * connection (restart, failover, idle-session kill: 57P01) makes the pool, or
 * the client checked out at that moment, emit "error"; unheard, Node would
 * exit. Both are heard and logged: the broken client is dropped, the call
 * that used it fails (and answers UNAVAILABLE), the next one connects anew.
 */
export function openPool(url: string, settings: PoolSettings, log: Logger): pg.Pool {
  const pool = new pg.Pool({
    Client: preparingClient(new StatementNames()),
    connectionString: url,
    max: settings.maxConnections,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    statement_timeout: settings.statementTimeoutMs,
    idle_in_transaction_session_timeout: settings.idleInTransactionTimeoutMs,
    // Notices a peer that vanished without closing (a frozen or partitioned server) instead of waiting forever.
    keepAlive: true,
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
    },
  });
  pool.on("error", (error) => log.warn("database connection lost (idle)", errorFields(error)));
  pool.on("connect", (client) => client.on("error", (error) => log.warn("database connection lost", errorFields(error))));
  return pool;
}

/** Brings the schema up to date; throws with the failing migration's name. */
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === "Error");
  if (error !== undefined || failed !== undefined) {
    throw new Error(`migration ${failed?.migrationName ?? "(unknown)"} failed`, { cause: error });
  }
  return (results ?? []).map((r) => r.migrationName);
}
