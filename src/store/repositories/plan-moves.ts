import type { Trx } from "../database.js";
import { SqlText } from "../sql-rows.js";
import type { NewAttemptRow } from "../tables/attempts.js";
import type { NewDeliveryEventRow } from "../tables/delivery-events.js";
import type { LedgerEntryRow } from "../tables/ledger.js";
import type { NewOutboxRow } from "../tables/outbox.js";
import { cancelUnstartedInto } from "./attempts.js";
import { spendIncrementsInto, type SpendIncrement } from "./spend-counters.js";

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
  // Written as text (SqlText): a batch is thousands of values, and Kysely's `sql` fragments built and compiled a
  // frozen node for each: 15 % of `serve`'s CPU during a backlog's drain (BENCHMARKS.md, 2026-12-06 (13)).
  const statement = new SqlText().add("with positions as (\n  update verifications v set current_step = p.current_step::int, ");
  statement.add("next_step_at = p.next_step_at::timestamptz, event_seq = p.event_seq::int\n  from (values ");
  write.positions.forEach((p, i) => {
    statement.add(i > 0 ? ", (" : "(").value(p.id).add(", ").value(p.currentStep).add(", ").value(p.nextStepAt?.toISOString() ?? null);
    statement.add(", ").value(p.eventSeq).add(", ").value(p.heldEventSeq).add(")");
  });
  statement.add(") as p(id, current_step, next_step_at, event_seq, held_event_seq)\n  where v.id = p.id and v.event_seq = p.held_event_seq::int\n  returning v.id)");
  const canceled = write.canceledAttemptIds.length > 0;
  if (canceled) cancelUnstartedInto(statement.add(",\ncanceled as ("), "id", write.canceledAttemptIds, write.now).add(")");
  if (write.attempts.length > 0) statement.add(",\nnew_attempts as (").insertRows("attempts", write.attempts).add(" returning id)");
  if (write.events.length > 0) statement.add(",\nnew_events as (").insertRows("delivery_events", write.events).add(" returning sequence)");
  if (write.outbox.length > 0) statement.add(",\nnew_messages as (").insertRows("outbox", write.outbox).add(" returning id)");
  const entries = write.ledger.length > 0;
  if (entries) statement.add(",\nnew_entries as (").insertRows("ledger_entries", write.ledger).add(" on conflict do nothing returning entry_key)");
  if (write.balanceDeltas.size > 0) {
    statement.add(",\nbalances as (\n  update caller_balances b set balance_micros = b.balance_micros + d.delta::bigint\n  from (values ");
    [...write.balanceDeltas].forEach(([callerId, delta], i) => statement.add(i > 0 ? ", (" : "(").value(callerId).add(", ").value(delta).add(")"));
    statement.add(") as d(caller_id, delta)\n  where b.caller_id = d.caller_id\n  returning b.caller_id)");
  }
  if (write.spend.length > 0) spendIncrementsInto(statement.add(",\n"), write.spend);
  const count = (cte: string, present: boolean) => (present ? `(select count(*) from ${cte})` : "0");
  statement.add(`\nselect ${count("positions", true)} as positions, ${count("canceled", canceled)} as canceled, ${count("new_entries", entries)} as entries`);
  const result = await trx.executeQuery<{ positions: number; canceled: number; entries: number }>(statement.compile());
  const counted = result.rows[0]!;
  const expected = { positions: write.positions.length, canceled: write.canceledAttemptIds.length, entries: write.ledger.length };
  for (const key of ["positions", "canceled", "entries"] as const) {
    if (Number(counted[key]) !== expected[key]) {
      throw new Error(`plan moves out of step with the database: ${key} ${Number(counted[key])} written of ${expected[key]}`);
    }
  }
}
