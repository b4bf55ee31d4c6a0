import { sql } from "kysely";
import type { Db } from "../database.js";

/** One fixed window a send is counted in, and the window before it (for the sliding estimate). */
export interface SendWindow {
  readonly key: string;
  readonly windowStart: Date;
  readonly previousStart: Date;
  /** What the send adds: 1 for a count of sends, the price in micros for a spend. */
  readonly amount: number;
}

export interface SendAdmissionQuery {
  readonly callerId: string;
  /** "" when the request has none. */
  readonly idempotencyKey: string;
  /** Destination guards whose lock refuses the send. */
  readonly guardKeys: readonly string[];
  readonly windows: readonly SendWindow[];
  readonly now: Date;
}

export type SendAdmission =
  /** The idempotency key already names a verification: nothing was counted. */
  | { readonly kind: "held"; readonly verificationId: string; readonly requestHash: string }
  /** A guard is locked until `until`: nothing was counted. */
  | { readonly kind: "locked"; readonly until: Date }
  /** Every window was counted; each with its new count and its previous window's. */
  | { readonly kind: "counted"; readonly counts: ReadonlyMap<string, { readonly current: number; readonly previous: number }> };

/**
 * Looks up the idempotency key and the destination locks and, if neither
 * stops the send, adds the send's amount to each of its windows: one autocommitted
 * statement, so a window row is held only for that statement, not for the
 * send's transaction. Rows are counted in one order (by key, bytewise) so two
 * sends sharing windows never wait on each other in a cycle.
 */
export async function admitSend(db: Db, query: SendAdmissionQuery): Promise<SendAdmission> {
  const windows = JSON.stringify(
    query.windows.map((w) => ({ key: w.key, window_start: w.windowStart.toISOString(), previous_start: w.previousStart.toISOString(), amount: w.amount })),
  );
  const guardKeys = JSON.stringify(query.guardKeys);
  const { rows } = await sql<{ held_id: string | null; held_hash: string | null; locked_until: Date | null; counts: Array<{ key: string; current: number; previous: number }> | null }>`
    with held as (
      select verification_id, request_hash from idempotency_keys
      where ${query.idempotencyKey} <> '' and caller_id = ${query.callerId} and key = ${query.idempotencyKey}
    ), locked as (
      select max(locked_until) as until from destination_guards
      where destination_key in (select jsonb_array_elements_text(${guardKeys}::jsonb)) and locked_until > ${query.now}
    ), windows as (
      select * from jsonb_to_recordset(${windows}::jsonb) as w(key text, window_start timestamptz, previous_start timestamptz, amount bigint)
    ), counted as (
      insert into rate_limit_counters as c (key, window_start, count)
      select key, window_start, amount from windows
      where not exists (select 1 from held) and (select until from locked) is null
      order by key collate "C"
      on conflict (key, window_start) do update set count = c.count + excluded.count
      returning key, count
    )
    select
      (select verification_id from held) as held_id,
      (select request_hash from held) as held_hash,
      (select until from locked) as locked_until,
      (select jsonb_agg(jsonb_build_object('key', counted.key, 'current', counted.count, 'previous', coalesce(before.count, 0)))
         from counted
         join windows on windows.key = counted.key
         left join rate_limit_counters before on before.key = windows.key and before.window_start = windows.previous_start) as counts
  `.execute(db);
  const row = rows[0]!;
  if (row.held_id !== null) return { kind: "held", verificationId: row.held_id, requestHash: row.held_hash! };
  if (row.locked_until !== null) return { kind: "locked", until: new Date(row.locked_until) };
  return { kind: "counted", counts: new Map((row.counts ?? []).map((c) => [c.key, { current: Number(c.current), previous: Number(c.previous) }])) };
}

/**
 * Takes a send's amounts back out of its windows: for a send refused by one of them or
 * failed after being counted, so only sends that happened count. Rows are
 * locked in the same order as `admitSend` counts them.
 */
export async function releaseSend(db: Db, windows: readonly SendWindow[]): Promise<void> {
  const json = JSON.stringify(windows.map((w) => ({ key: w.key, window_start: w.windowStart.toISOString(), amount: w.amount })));
  await sql`
    with target as (
      select c.key, c.window_start, w.amount from rate_limit_counters c
      join jsonb_to_recordset(${json}::jsonb) as w(key text, window_start timestamptz, amount bigint) on c.key = w.key and c.window_start = w.window_start
      order by c.key collate "C"
      for update of c
    )
    update rate_limit_counters c set count = greatest(c.count - target.amount, 0)
    from target where c.key = target.key and c.window_start = target.window_start
  `.execute(db);
}
