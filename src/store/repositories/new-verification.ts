import { sql } from "kysely";
import type { Money } from "../../domain/money.js";
import type { Trx } from "../database.js";
import type { NewAttemptRow } from "../tables/attempts.js";
import type { NewDeliveryEventRow } from "../tables/delivery-events.js";
import type { NewOutboxRow } from "../tables/outbox.js";
import type { NewVerificationRow, VerificationRow } from "../tables/verifications.js";
import type { DebitOutcome } from "./ledger.js";

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
  /** The balance could not pay: the caller must roll the transaction back. */
  | { readonly kind: "unpaid"; readonly debit: DebitOutcome };

/**
 * Writes a verification, its first attempt, their events and outbox messages,
 * and debits the attempt's price, in one statement (one round trip). The
 * debit is a conditional update of the caller's balance row, so parallel sends
 * of a metered caller queue on that row only from here to the commit; an
 * unmetered caller has no row and nothing waits. The inserts happen even when
 * the balance cannot pay: that answer comes back and the transaction is rolled back.
 */
export async function writeNewVerification(trx: Trx, write: NewVerificationWrite): Promise<NewVerificationOutcome> {
  const callerId = write.verification.caller_id;
  const attemptId = write.attempt.id;
  const { price } = write;
  const now = write.verification.created_at;
  const row = await trx
    .with("balance", (db) => db.selectFrom("caller_balances").select(["currency", "balance_micros"]).where("caller_id", "=", callerId))
    .with("debit", (db) =>
      db
        .updateTable("caller_balances")
        .set({ balance_micros: sql`balance_micros - ${price.micros}` })
        .where("caller_id", "=", callerId)
        .where((eb) => (price.micros === 0 ? sql<boolean>`true` : eb.and([eb("currency", "=", price.currency), eb("balance_micros", ">=", price.micros)])))
        .returning("caller_id"),
    )
    .with("ledger", (db) =>
      db
        .insertInto("ledger_entries")
        .columns(["entry_key", "caller_id", "attempt_id", "kind", "amount_micros", "created_at"])
        .expression((eb) =>
          eb
            .selectFrom("debit")
            .select([
              eb.val(`debit:${attemptId}`).as("entry_key"),
              "debit.caller_id",
              eb.val(attemptId).as("attempt_id"),
              eb.val("debit").as("kind"),
              eb.val(-price.micros).as("amount_micros"),
              eb.val(now).as("created_at"),
            ])
            .where(sql<boolean>`${price.micros} > 0`),
        )
        .returning("entry_key"),
    )
    .with("verification", (db) => db.insertInto("verifications").values(write.verification).returningAll())
    .with("attempt", (db) => db.insertInto("attempts").values(write.attempt).returning("id"))
    .with("event", (db) => db.insertInto("delivery_events").values([...write.events]).returning("sequence"))
    .with("message", (db) => db.insertInto("outbox").values([...write.outbox]).returning("id"))
    .selectFrom("verification")
    .selectAll("verification")
    .select((eb) => [
      eb.selectFrom("debit").select((d) => d.fn.countAll<number>().as("n")).as("debited"),
      eb.selectFrom("balance").select("balance.currency").as("balance_currency"),
      eb.selectFrom("balance").select("balance.balance_micros").as("balance_micros"),
    ])
    .executeTakeFirstOrThrow();

  const { debited, balance_currency, balance_micros, ...verification } = row;
  if (balance_currency === null || Number(debited) > 0) return { kind: "written", verification };
  // Read in the statement's snapshot, before any parallel debit: good enough to say why.
  const balance = { currency: balance_currency, micros: Number(balance_micros) };
  return { kind: "unpaid", debit: { kind: balance.currency === price.currency ? "insufficient" : "wrong-currency", balance } };
}
