import { CompiledQuery, sql, type RawBuilder } from "kysely";

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
 * `(columns) select …, … from <source>`: `row` inserted once for each row of
 * `source` (a CTE of the same statement that returns at most one row: the row
 * is written only if that CTE's write happened). Every value is a parameter;
 * PostgreSQL takes its type from the column it is inserted into.
 */
export function insertValuesFrom(source: string, row: object): RawBuilder<unknown> {
  const entries = Object.entries(row).filter(([, v]) => v !== undefined);
  if (entries.length === 0) throw new Error("insertValuesFrom needs a row with columns");
  return sql`(${sql.join(entries.map(([column]) => sql.ref(column)))}) select ${sql.join(entries.map(([, v]) => sql`${v}`))} from ${sql.table(source)}`;
}

/**
 * A statement written as text with numbered parameters, for the hottest ones
 * (SendOtp's writes): Kysely's `sql` fragments build and compile a tree of
 * frozen nodes per call, the largest share of `serve`'s allocations per
 * SendOtp (BENCHMARKS.md). Identifiers passed in are the code's own names,
 * never input; every value is a parameter.
 */
export class SqlText {
  private text = "";
  private readonly parameters: unknown[] = [];

  /** Appends SQL text as is. */
  add(text: string): this {
    this.text += text;
    return this;
  }

  /** Appends a parameter holding `value`. */
  value(value: unknown): this {
    this.parameters.push(value);
    this.text += `$${this.parameters.length}`;
    return this;
  }

  /**
   * `insert into <table> (columns) select <values> from <source>`: one row,
   * written only if the CTE `source` has a row (a condition of the statement
   * it is part of). Each value is a parameter PostgreSQL types by its column;
   * an undefined one is left out, so the column's default applies.
   */
  insertRowIf(table: string, row: object, source: string): this {
    const entries = Object.entries(row).filter(([, value]) => value !== undefined);
    this.add(`insert into "${table}" (${entries.map(([column]) => `"${column}"`).join(", ")}) select `);
    entries.forEach(([, value], i) => (i > 0 ? this.add(", ") : this).value(value));
    return this.add(` from "${source}"`);
  }

  /**
   * `insert into <table> (columns) values (…), (…)`: the columns are every key
   * any row has (a row without one, or with it undefined, gets the column's
   * default). Each value is a parameter PostgreSQL types by its column.
   */
  insertRows(table: string, rows: readonly object[]): this {
    const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
    this.add(`insert into "${table}" (${columns.map((column) => `"${column}"`).join(", ")}) values `);
    rows.forEach((row, r) => {
      this.add(r > 0 ? ", (" : "(");
      columns.forEach((column, c) => {
        if (c > 0) this.add(", ");
        const value = (row as Record<string, unknown>)[column];
        if (value === undefined) this.add("default");
        else this.value(value);
      });
      this.add(")");
    });
    return this;
  }

  compile(): CompiledQuery {
    return CompiledQuery.raw(this.text, this.parameters);
  }
}
