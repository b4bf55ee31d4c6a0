import { sql, type RawBuilder } from "kysely";
import type { Trx } from "../database.js";
import { insertValues } from "../sql-rows.js";
import type { NewAttemptRow } from "../tables/attempts.js";
import type { NewDeliveryEventRow } from "../tables/delivery-events.js";
import type { LedgerEntryRow } from "../tables/ledger.js";
import type { NewOutboxRow } from "../tables/outbox.js";
import { cancelUnstartedSql } from "./attempts.js";
import { spendIncrementsCte, type SpendIncrement } from "./spend-counters.js";

/** Where one plan stands after the scheduler moved it, and the event number its new events ended on. */
export interface PlanPosition {
  readonly id: string;
  readonly currentStep: number;
  readonly nextStepAt: Date | null;
  /** The verification's last event number as read under its lock: the update is refused if it changed. */
  readonly heldEventSeq: number;
  readonly eventSeq: number;
}

/** Everything the scheduler writes for a batch of plans it holds the locks of. */
export interface PlanMovesWrite {
  readonly now: Date;
  readonly positions: readonly PlanPosition[];
  /** Attempts no provider call has started, superseded by a later step. */
  readonly canceledAttemptIds: readonly string[];
  readonly attempts: readonly NewAttemptRow[];
  readonly events: readonly NewDeliveryEventRow[];
  readonly outbox: readonly NewOutboxRow[];
  readonly ledger: readonly LedgerEntryRow[];
  /** Per metered caller, what its balance moves by (debits negative, refunds positive). */
  readonly balanceDeltas: ReadonlyMap<string, number>;
  /** What capped callers' spend per country grows by today. */
  readonly spend: readonly SpendIncrement[];
}

/**
 * Writes a batch of plan moves in one statement (one round trip, whatever the
 * batch's size). The rows it changes must be locked by the caller's
 * transaction; should any of them not be as the caller read it (a position
 * whose event number moved, an attempt no longer unstarted, a ledger entry
 * already made), it throws and the caller's transaction must roll back.
 */
export async function writePlanMoves(trx: Trx, write: PlanMovesWrite): Promise<void> {
  if (write.positions.length === 0) return;
  const parts: RawBuilder<unknown>[] = [
    sql`positions as (
      update verifications v set current_step = p.current_step::int, next_step_at = p.next_step_at::timestamptz, event_seq = p.event_seq::int
      from (values ${sql.join(write.positions.map((p) => sql`(${p.id}, ${p.currentStep}, ${p.nextStepAt?.toISOString() ?? null}, ${p.eventSeq}, ${p.heldEventSeq})`))})
        as p(id, current_step, next_step_at, event_seq, held_event_seq)
      where v.id = p.id and v.event_seq = p.held_event_seq::int
      returning v.id)`,
  ];
  if (write.canceledAttemptIds.length > 0) {
    parts.push(sql`canceled as (${cancelUnstartedSql(sql`id in (${sql.join(write.canceledAttemptIds)})`, write.now)})`);
  }
  if (write.attempts.length > 0) parts.push(sql`new_attempts as (insert into attempts ${insertValues(write.attempts)} returning id)`);
  if (write.events.length > 0) parts.push(sql`new_events as (insert into delivery_events ${insertValues(write.events)} returning sequence)`);
  if (write.outbox.length > 0) parts.push(sql`new_messages as (insert into outbox ${insertValues(write.outbox)} returning id)`);
  if (write.ledger.length > 0) parts.push(sql`new_entries as (insert into ledger_entries ${insertValues(write.ledger)} on conflict do nothing returning entry_key)`);
  if (write.balanceDeltas.size > 0) {
    const deltas = [...write.balanceDeltas].map(([callerId, delta]) => sql`(${callerId}, ${delta})`);
    parts.push(sql`balances as (
      update caller_balances b set balance_micros = b.balance_micros + d.delta::bigint
      from (values ${sql.join(deltas)}) as d(caller_id, delta)
      where b.caller_id = d.caller_id
      returning b.caller_id)`);
  }
  if (write.spend.length > 0) parts.push(spendIncrementsCte(write.spend));
  const count = (cte: string, present: boolean) => (present ? sql`(select count(*) from ${sql.raw(cte)})` : sql`0`);
  const result = await sql<{ positions: number; canceled: number; entries: number }>`
    with ${sql.join(parts)}
    select ${count("positions", true)} as positions,
           ${count("canceled", write.canceledAttemptIds.length > 0)} as canceled,
           ${count("new_entries", write.ledger.length > 0)} as entries`.execute(trx);
  const counted = result.rows[0]!;
  const expected = { positions: write.positions.length, canceled: write.canceledAttemptIds.length, entries: write.ledger.length };
  for (const key of ["positions", "canceled", "entries"] as const) {
    if (Number(counted[key]) !== expected[key]) {
      throw new Error(`plan moves out of step with the database: ${key} ${Number(counted[key])} written of ${expected[key]}`);
    }
  }
}
