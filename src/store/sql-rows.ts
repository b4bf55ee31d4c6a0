import { sql, type RawBuilder } from "kysely";

/**
 * `(columns) values (…), (…)` for rows of one shape (the first row's keys
 * name the columns), every value a parameter (an undefined one: the column's
 * default). For statements written as plain SQL where the query builder's
 * compilation measurably cost more than the statement (VerifyOtp's, see BENCHMARKS.md).
 */
export function insertValues(rows: readonly object[]): RawBuilder<unknown> {
  const columns = Object.keys(rows[0] ?? {});
  if (columns.length === 0) throw new Error("insertValues needs at least one row with columns");
  const value = (row: object, column: string) => {
    const v = (row as Record<string, unknown>)[column];
    return v === undefined ? sql`default` : sql`${v}`;
  };
  const tuples = rows.map((row) => sql`(${sql.join(columns.map((column) => value(row, column)))})`);
  return sql`(${sql.join(columns.map((column) => sql.ref(column)))}) values ${sql.join(tuples)}`;
}

/**
 * `insert into <table> (columns) select <values> from <source>`: one row,
 * written only if the CTE `source` has a row (a condition of the statement
 * it is part of). Each value is a parameter PostgreSQL types by its column;
 * an undefined one is left out, so the column's default applies.
 */
export function insertRowIf(table: string, row: object, source: string): RawBuilder<unknown> {
  const entries = Object.entries(row).filter(([, value]) => value !== undefined);
  return sql`insert into ${sql.table(table)} (${sql.join(entries.map(([column]) => sql.ref(column)))}) select ${sql.join(entries.map(([, value]) => sql`${value}`))} from ${sql.table(source)}`;
}
