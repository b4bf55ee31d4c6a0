import pg from "pg";

/** A statement text is prepared once it has run this often in the process: the hot paths' statements, not one-offs. */
const PREPARE_AFTER_RUNS = 5;
/** At most this many statement texts are prepared (per connection on the server, each holds its plan). */
const MAX_PREPARED = 200;
/** Texts counted towards PREPARE_AFTER_RUNS; beyond it new texts are simply not prepared. */
const MAX_COUNTED = 5_000;

/**
 * Names for frequently run statement texts. A named query is parsed and
 * planned once per connection and then only bound and executed: the hot
 * paths' statements are long CTEs whose parse and plan cost PostgreSQL more
 * CPU than running them. The names are process-wide (one text, one name, on
 * every connection) and their number is bounded, so a stream of distinct
 * texts (batches of varying size) cannot fill the server's memory.
 */
export class StatementNames {
  private readonly runs = new Map<string, number>();
  private readonly names = new Map<string, string>();

  nameOf(text: string): string | undefined {
    const name = this.names.get(text);
    if (name !== undefined) return name;
    const runs = (this.runs.get(text) ?? 0) + 1;
    if (runs < PREPARE_AFTER_RUNS) {
      if (runs > 1 || this.runs.size < MAX_COUNTED) this.runs.set(text, runs);
      return undefined;
    }
    this.runs.delete(text);
    if (this.names.size >= MAX_PREPARED) return undefined;
    const assigned = `otp_${this.names.size}`;
    this.names.set(text, assigned);
    return assigned;
  }
}

/**
 * A pg client that prepares frequently run parameterised statements (the
 * form Kysely sends: text plus values). Statements without parameters (DDL,
 * migrations, `begin`/`commit`) run as they are.
 */
export function preparingClient(names: StatementNames): typeof pg.Client {
  return class PreparingClient extends pg.Client {
    override query(config: any, values?: any, callback?: any): any {
      if (typeof config === "string" && Array.isArray(values) && values.length > 0) {
        const name = names.nameOf(config);
        if (name !== undefined) return super.query({ name, text: config, values }, callback);
      }
      return super.query(config, values, callback);
    }
  } as typeof pg.Client;
}
