import { CompiledQuery } from "kysely";
import type { Executor, Trx } from "../database.js";
import type { SqlText } from "../sql-rows.js";
import type { DeliveryEventRow, NewDeliveryEventRow } from "../tables/delivery-events.js";
import type { NewOutboxRow } from "../tables/outbox.js";

/** An event as a write appends it: its timeline row (numbered on from the verification's held number) and its message. */
export interface EventRecord {
  readonly event: NewDeliveryEventRow;
  readonly message: NewOutboxRow;
}

/**
 * Appends an event and its outbox message in one statement, moving the
 * verification's last event number to the event's. The caller holds the
 * verification's lock and read its number under it; a number out of step
 * (some writer did not take the lock) throws, and the transaction rolls back.
 */
export async function appendDeliveryEvent(trx: Trx, row: NewDeliveryEventRow, message: NewOutboxRow): Promise<void> {
  const advanced = await trx
    .with("advanced", (db) =>
      db
        .updateTable("verifications")
        .set({ event_seq: row.sequence })
        .where("id", "=", row.verification_id)
        .where("event_seq", "=", row.sequence - 1)
        .returning("id"),
    )
    .with("event", (db) => db.insertInto("delivery_events").values(row).returning("sequence"))
    .with("message", (db) => db.insertInto("outbox").values(message).returning("id"))
    .selectFrom("advanced")
    .select("id")
    .execute();
  checkAdvanced(advanced.length, row);
}

/**
 * Appends the CTEs of a write that appends `record` for the row `source` (a
 * CTE of the same statement returning at most one row) returns, only if it
 * returns one: `advanced` moves the verification's last event number on to the
 * event's, then the event and its message are inserted. The statement selects
 * `(select count(*) from advanced)` for `checkAdvanced`.
 */
export function appendEventInto(statement: SqlText, source: string, record: EventRecord): SqlText {
  const sequence = record.event.sequence;
  statement.add("advanced as (\n  update verifications set event_seq = ").value(sequence);
  statement.add(` where id = (select verification_id from "${source}") and event_seq = `).value(sequence - 1).add(" returning id),\n");
  statement.add("event as (").insertRowIf("delivery_events", record.event, source).add("),\n");
  return statement.add("message as (").insertRowIf("outbox", record.message, source).add(")");
}

/** Throws unless the write moved the verification's last event number by one: a writer did not hold its lock, and the transaction must roll back. */
export function checkAdvanced(advanced: number | string, event: NewDeliveryEventRow): void {
  if (Number(advanced) !== 1) throw new Error(`event ${event.sequence} of verification ${event.verification_id} is out of step with its last event number`);
}

/** A verification's events after `afterSequence`, in order. */
export async function listDeliveryEvents(
  db: Executor,
  verificationId: string,
  afterSequence = 0,
): Promise<DeliveryEventRow[]> {
  return db
    .selectFrom("delivery_events")
    .selectAll()
    .where("verification_id", "=", verificationId)
    .where("sequence", ">", afterSequence)
    .orderBy("sequence")
    .execute();
}

/** A stream's opening: the caller's verification, and the sequence its watcher asked to start after. */
export interface WatchStartQuery {
  readonly verificationId: string;
  readonly callerId: string;
  readonly afterSequence: number;
}

/** What a watcher opens with: the verification's expiry and its events after the sequence it asked from. */
export interface WatchStart {
  readonly expiresAt: Date;
  readonly events: DeliveryEventRow[];
}

/**
 * Several streams' openings in one statement (a burst of streams opening is a
 * few statements): for each, the caller's verification's expiry and its events
 * after the sequence asked, in order; undefined if the caller has no such verification.
 */
export async function readWatchStarts(db: Executor, queries: readonly WatchStartQuery[]): Promise<Array<WatchStart | undefined>> {
  const parameters = [queries.map((q) => q.verificationId), queries.map((q) => q.callerId), queries.map((q) => q.afterSequence)];
  const { rows } = await db.executeQuery<DeliveryEventRow & { watch: number; watched_expires_at: Date }>(CompiledQuery.raw(WATCH_STARTS, parameters));
  const starts: Array<{ expiresAt: Date; events: DeliveryEventRow[] } | undefined> = queries.map(() => undefined);
  for (const { watch, watched_expires_at: expiresAt, ...event } of rows) {
    const start = (starts[watch - 1] ??= { expiresAt, events: [] });
    // Without events the left join gives one row whose event columns are null.
    if (event.verification_id !== null) start.events.push(event);
  }
  return starts;
}

const WATCH_STARTS = `select w.watch, v.expires_at as watched_expires_at, e.*
  from unnest($1::text[], $2::text[], $3::bigint[]) with ordinality as w(verification_id, caller_id, after_sequence, watch)
  join verifications v on v.id = w.verification_id and v.caller_id = w.caller_id
  left join delivery_events e on e.verification_id = v.id and e.sequence > w.after_sequence
  order by w.watch, e.sequence`;
