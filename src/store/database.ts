import { PGlite } from "@electric-sql/pglite";
import { Kysely, Migrator, PostgresDialect, type Transaction } from "kysely";
import pg from "pg";
import { migrationProvider } from "./migrations/index.js";
import { PGliteDialect } from "./pglite-dialect.js";
import type { Database } from "./tables/index.js";

export type Db = Kysely<Database>;
export type Trx = Transaction<Database>;
/** Either the database or an open transaction: repositories accept both. */
export type Executor = Db | Trx;

export type DatabaseOptions =
  | { readonly kind: "postgres"; readonly url: string; readonly maxConnections?: number }
  /** `dataDir` undefined keeps the database in memory (tests). */
  | { readonly kind: "pglite"; readonly dataDir?: string };

const INT8_OID = 20;

/**
 * Opens the database. Both drivers return the same JavaScript types: int8 and
 * count(*) as numbers (pg would return strings; our counters and micros stay
 * far below 2^53), timestamptz as Date, jsonb parsed.
 */
export async function openDatabase(options: DatabaseOptions): Promise<Db> {
  if (options.kind === "postgres") {
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 10,
      types: {
        getTypeParser: ((oid: number, format?: "text" | "binary") =>
          oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
      },
    });
    return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  }
  const pglite = options.dataDir === undefined ? await PGlite.create() : await PGlite.create(options.dataDir);
  return new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
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
