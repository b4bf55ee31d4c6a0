import { CompiledQuery } from "kysely";

/**
 * A statement written as text with numbered parameters, for the hot paths'
 * writes (SendOtp, VerifyOtp, the worker's and receipts' attempt writes, the
 * scheduler's): Kysely's `sql` fragments build and compile a tree of frozen
 * nodes per call, the largest share of `serve`'s allocations per SendOtp and
 * 15 % of its CPU in a drain (BENCHMARKS.md). Identifiers passed in are the
 * code's own names, never input; every value is a parameter.
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

/**
 * A row read through JSON (`to_jsonb`, to bring several tables' rows in one
 * statement) as the driver would have read it: its time columns, ISO text in
 * JSON, as Dates again (null stays null). Numbers and JSON columns need nothing.
 */
export function rowFromJson<Row>(json: Record<string, unknown>, timeColumns: readonly string[]): Row {
  const row: Record<string, unknown> = { ...json };
  for (const column of timeColumns) if (typeof row[column] === "string") row[column] = new Date(row[column] as string);
  return row as Row;
}
