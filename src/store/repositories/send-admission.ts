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
  /**
   * Every window was counted; each with its new count and its previous window's. `metered`: the caller has a
   * balance its sends are paid from.
   */
  | { readonly kind: "counted"; readonly counts: ReadonlyMap<string, { readonly current: number; readonly previous: number }>; readonly metered: boolean };

/**
 * Looks up each send's idempotency key and destination locks and, for the
 * sends that neither stops, adds their amounts to their windows: one
 * autocommitted statement for the whole group, so a window row is held only
 * for that statement (not for a send's transaction), and sends of one caller
 * that arrive together update its window row once instead of queueing on it.
 * Rows are counted in one order (by key, bytewise) so two statements sharing
 * windows never wait on each other in a cycle.
 *
 * The group is counted as if its sends came one after the other in the
 * order given: each send's count is the window's count after the statement
 * less what the sends after it in the group added.
 */
export async function admitSends(db: Db, queries: readonly SendAdmissionQuery[]): Promise<SendAdmission[]> {
  // Each distinct window of the group gets a number; the statement adds up per number.
  const windowIds = new Map<string, number>();
  const idOf = (w: SendWindow) => {
    const name = `${w.key}\u0000${w.windowStart.toISOString()}`;
    let id = windowIds.get(name);
    if (id === undefined) windowIds.set(name, (id = windowIds.size));
    return id;
  };
  const keyed = queries.filter((q) => q.idempotencyKey !== "");
  const sends = JSON.stringify(
    queries.map((q, i) => ({
      i,
      caller_id: q.callerId,
      idempotency_key: q.idempotencyKey,
      guard_keys: q.guardKeys,
      now: q.now.toISOString(),
      windows: q.windows.map((w) => ({ id: idOf(w), key: w.key, window_start: w.windowStart.toISOString(), previous_start: w.previousStart.toISOString(), amount: w.amount })),
    })),
  );
  const { rows } = await sql<{
    held: Array<{ i: number; verification_id: string; request_hash: string }> | null;
    locked: Array<{ i: number; until: string }> | null;
    counts: Array<{ id: number; count: string | number; previous: string | number }> | null;
    metered: string[] | null;
  }>`
    with sends as (
      select * from jsonb_to_recordset(${sends}::jsonb) as s(i int, caller_id text, idempotency_key text, guard_keys jsonb, now timestamptz, windows jsonb)
    ), held as (
      select sends.i, k.verification_id, k.request_hash from sends
      join idempotency_keys k on sends.idempotency_key <> '' and k.caller_id = sends.caller_id and k.key = sends.idempotency_key
      -- As for the guards below: the keys as arrays too, so that they are found by index.
      where k.caller_id = any(${[...new Set(keyed.map((q) => q.callerId))]}::text[]) and k.key = any(${[...new Set(keyed.map((q) => q.idempotencyKey))]}::text[])
    ), locked as (
      select sends.i, max(g.locked_until) as until from sends
      cross join lateral jsonb_array_elements_text(sends.guard_keys) as guard(key)
      join destination_guards g on g.destination_key = guard.key and g.locked_until > sends.now
      -- The group's keys as an array too: the guards are then found by their key's index. Joined on the keys from
      -- the JSON alone, they would be read whole (the planner takes the JSON for 100 rows and hashes the table).
      where g.destination_key = any(${[...new Set(queries.flatMap((q) => q.guardKeys))]}::text[])
      group by sends.i
    ), windows as (
      select w.* from sends
      cross join lateral jsonb_to_recordset(sends.windows) as w(id int, key text, window_start timestamptz, previous_start timestamptz, amount bigint)
      where not exists (select 1 from held where held.i = sends.i) and not exists (select 1 from locked where locked.i = sends.i)
    ), totals as (
      select id, key, window_start, previous_start, sum(amount) as amount from windows group by id, key, window_start, previous_start
    ), counted as (
      insert into rate_limit_counters as c (key, window_start, count)
      select key, window_start, amount from totals
      order by key collate "C", window_start
      on conflict (key, window_start) do update set count = c.count + excluded.count
      returning key, window_start, count
    )
    select
      (select jsonb_agg(held) from held) as held,
      (select jsonb_agg(locked) from locked) as locked,
      (select jsonb_agg(jsonb_build_object('id', totals.id, 'count', counted.count, 'previous', coalesce(before.count, 0)))
         from counted
         join totals on totals.key = counted.key and totals.window_start = counted.window_start
         left join rate_limit_counters before on before.key = totals.key and before.window_start = totals.previous_start) as counts,
      (select jsonb_agg(caller_id) from caller_balances where caller_id in (select caller_id from sends)) as metered
  `.execute(db);
  const row = rows[0]!;
  const metered = new Set(row.metered ?? []);
  const held = new Map((row.held ?? []).map((h) => [h.i, h]));
  const locked = new Map((row.locked ?? []).map((l) => [l.i, new Date(l.until)]));
  // What each window held after the statement; walked back through the group, send by send.
  const after = new Map((row.counts ?? []).map((c) => [c.id, { current: Number(c.count), previous: Number(c.previous) }]));
  const admissions: SendAdmission[] = new Array(queries.length);
  for (let i = queries.length - 1; i >= 0; i--) {
    const h = held.get(i);
    const until = locked.get(i);
    if (h !== undefined) admissions[i] = { kind: "held", verificationId: h.verification_id, requestHash: h.request_hash };
    else if (until !== undefined) admissions[i] = { kind: "locked", until };
    else {
      const counts = new Map<string, { current: number; previous: number }>();
      for (const w of queries[i]!.windows) {
        const window = after.get(idOf(w))!;
        counts.set(w.key, { ...window });
        window.current -= w.amount;
      }
      admissions[i] = { kind: "counted", counts, metered: metered.has(queries[i]!.callerId) };
    }
  }
  return admissions;
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
