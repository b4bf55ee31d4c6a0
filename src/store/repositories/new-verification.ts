import type { Money } from "../../domain/money.js";
import type { Executor } from "../database.js";
import type { NewAttemptRow } from "../tables/attempts.js";
import type { NewDeliveryEventRow } from "../tables/delivery-events.js";
import type { Database } from "../tables/index.js";
import type { NewOutboxRow } from "../tables/outbox.js";
import type { NewVerificationRow, VerificationRow } from "../tables/verifications.js";
import { SqlText } from "../sql-rows.js";
import { findBalance, type DebitOutcome } from "./ledger.js";

/** Everything a new verification starts with, written by one statement. */
export interface NewVerificationWrite {
  /** With `event_seq` set to the number of `events`. */
  readonly verification: NewVerificationRow;
  readonly attempt: NewAttemptRow;
  readonly events: readonly NewDeliveryEventRow[];
  readonly outbox: readonly NewOutboxRow[];
  /** The first attempt's price, taken from the caller's balance if the caller is metered (has one). */
  readonly price: Money;
}

export type NewVerificationOutcome =
  | { readonly kind: "written"; readonly verification: VerificationRow }
  /** The balance could not pay: nothing was written. */
  | { readonly kind: "unpaid"; readonly debit: DebitOutcome };

/**
 * Writes a verification, its first attempt, their events and outbox messages,
 * and debits the attempt's price, in one statement (one round trip), which
 * writes all of it or none: every insert is conditional on the payment (a
 * caller without a balance row is unmetered and always pays). So it needs no
 * transaction of its own: autocommitted, a send is two round trips with its
 * limits. The debit is a conditional update of the caller's balance row, so
 * parallel sends of a metered caller queue on that row only for this
 * statement (or, inside a transaction, until its COMMIT); an unmetered caller
 * has no row and nothing waits.
 */
export async function writeNewVerification(db: Executor, write: NewVerificationWrite): Promise<NewVerificationOutcome> {
  const callerId = write.verification.caller_id;
  const attemptId = write.attempt.id;
  const { price } = write;
  const now = write.verification.created_at;
  const rows: Array<[keyof Database, object]> = [
    ["attempts", write.attempt],
    ...write.events.map((row): [keyof Database, object] => ["delivery_events", row]),
    ...write.outbox.map((row): [keyof Database, object] => ["outbox", row]),
  ];
  const statement = new SqlText().add("with balance as (select 1 from caller_balances where caller_id = ").value(callerId).add("),\n");
  statement.add("debit as (update caller_balances set balance_micros = balance_micros - ").value(price.micros).add(" where caller_id = ").value(callerId);
  if (price.micros !== 0) statement.add(" and currency = ").value(price.currency).add(" and balance_micros >= ").value(price.micros);
  statement.add(" returning caller_id),\n");
  statement.add("paid as (select 1 where not exists (select 1 from balance) or exists (select 1 from debit)),\n");
  statement.add("ledger as (insert into ledger_entries (entry_key, caller_id, attempt_id, kind, amount_micros, created_at) select ");
  statement.value(`debit:${attemptId}`).add(", caller_id, ").value(attemptId).add(", 'debit', ").value(-price.micros).add(", ").value(now);
  statement.add(" from debit where ").value(price.micros).add(" > 0 returning entry_key),\n");
  rows.forEach(([table, row], i) => statement.add(`row_${i} as (`).insertRowIf(table, row, "paid").add(" returning 1),\n"));
  statement.add("verification as (").insertRowIf("verifications", write.verification, "paid").add(" returning *)\nselect * from verification");
  const result = await db.executeQuery<VerificationRow>(statement.compile());
  const verification = result.rows[0];
  if (verification !== undefined) return { kind: "written", verification };
  // Read after the refusal: good enough to say why (balances are never deleted).
  const balance = await findBalance(db, callerId);
  if (balance === undefined) throw new Error(`send of ${callerId} refused as unpaid without a balance`);
  return { kind: "unpaid", debit: { kind: balance.currency === price.currency ? "insufficient" : "wrong-currency", balance } };
}

/**
 * Writes the new verifications of callers that are not metered (have no
 * balance: every send is paid), with their first attempts, events and outbox
 * messages, in one statement: all of them or none. For the sends that arrive
 * together, so they share one round trip and one commit. Returns the
 * verifications in the order given.
 *
 * Whether a caller is metered is read by the send's admission, just before:
 * a send admitted as the caller's balance is first opened (a configuration
 * rolled out with credit) may still be written unmetered.
 */
export async function writeUnmeteredVerifications(db: Executor, writes: readonly NewVerificationWrite[]): Promise<VerificationRow[]> {
  const statement = new SqlText();
  statement.add("with new_attempts as (").insertRows("attempts", writes.map((w) => w.attempt)).add("),\n");
  statement.add("new_events as (").insertRows("delivery_events", writes.flatMap((w) => w.events)).add("),\n");
  statement.add("new_outbox as (").insertRows("outbox", writes.flatMap((w) => w.outbox)).add(")\n");
  statement.insertRows("verifications", writes.map((w) => w.verification)).add(" returning *");
  const { rows } = await db.executeQuery<VerificationRow>(statement.compile());
  const byId = new Map(rows.map((row) => [row.id, row]));
  return writes.map((w) => byId.get(w.verification.id)!);
}
