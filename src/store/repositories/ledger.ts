import type { Money } from "../../domain/money.js";
import { sql } from "kysely";
import type { Executor, Trx } from "../database.js";


/** What debiting an attempt came to. */
export type DebitOutcome =
  | { readonly kind: "debited" | "unmetered" | "already-debited" }
  | { readonly kind: "insufficient"; readonly balance: Money }
  | { readonly kind: "wrong-currency"; readonly balance: Money };

/** Opens a metered caller's balance with its configured credit, once: later starts change nothing. */
export async function openBalance(db: Executor, callerId: string, credit: Money, now: Date): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const opened = await trx
      .insertInto("caller_balances")
      .values({ caller_id: callerId, currency: credit.currency, balance_micros: credit.micros })
      .onConflict((oc) => oc.doNothing())
      .returning("caller_id")
      .executeTakeFirst();
    if (opened === undefined) return;
    await trx
      .insertInto("ledger_entries")
      .values({ entry_key: `opening:${callerId}`, caller_id: callerId, attempt_id: null, kind: "opening", amount_micros: credit.micros, created_at: now })
      .onConflict((oc) => oc.doNothing())
      .execute();
  });
}

export async function findBalance(db: Executor, callerId: string): Promise<Money | undefined> {
  const row = await db.selectFrom("caller_balances").select(["currency", "balance_micros"]).where("caller_id", "=", callerId).executeTakeFirst();
  return row && { currency: row.currency, micros: row.balance_micros };
}

/**
 * Takes an attempt's price from its caller's balance, once per attempt, never
 * below zero: the conditional update holds the balance row, so parallel sends
 * queue on it instead of overdrawing.
 */
export async function debitAttempt(trx: Trx, callerId: string, attemptId: string, price: Money, now: Date): Promise<DebitOutcome> {
  const balance = await trx.selectFrom("caller_balances").select(["currency", "balance_micros"]).where("caller_id", "=", callerId).forUpdate().executeTakeFirst();
  if (balance === undefined) return { kind: "unmetered" };
  const current = { currency: balance.currency, micros: balance.balance_micros };
  if (price.micros === 0) return { kind: "debited" };
  if (balance.currency !== price.currency) return { kind: "wrong-currency", balance: current };
  if (balance.balance_micros < price.micros) return { kind: "insufficient", balance: current };
  const entry = await trx
    .insertInto("ledger_entries")
    .values({ entry_key: `debit:${attemptId}`, caller_id: callerId, attempt_id: attemptId, kind: "debit", amount_micros: -price.micros, created_at: now })
    .onConflict((oc) => oc.doNothing())
    .returning("entry_key")
    .executeTakeFirst();
  if (entry === undefined) return { kind: "already-debited" };
  await trx
    .updateTable("caller_balances")
    .set({ balance_micros: sql`balance_micros - ${price.micros}` })
    .where("caller_id", "=", callerId)
    .execute();
  return { kind: "debited" };
}

/** Gives back an attempt's debit, once; nothing if it was never debited. */
export async function refundAttempt(trx: Trx, attemptId: string, now: Date): Promise<number> {
  const debit = await trx.selectFrom("ledger_entries").select(["caller_id", "amount_micros"]).where("entry_key", "=", `debit:${attemptId}`).executeTakeFirst();
  if (debit === undefined) return 0;
  const refund = await trx
    .insertInto("ledger_entries")
    .values({ entry_key: `refund:${attemptId}`, caller_id: debit.caller_id, attempt_id: attemptId, kind: "refund", amount_micros: -debit.amount_micros, created_at: now })
    .onConflict((oc) => oc.doNothing())
    .returning("entry_key")
    .executeTakeFirst();
  if (refund === undefined) return 0;
  await trx
    .updateTable("caller_balances")
    .set({ balance_micros: sql`balance_micros + ${-debit.amount_micros}` })
    .where("caller_id", "=", debit.caller_id)
    .execute();
  return -debit.amount_micros;
}
