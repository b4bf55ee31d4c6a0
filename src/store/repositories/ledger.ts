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
 * Locks the balances of those of `callerIds` that are metered (have one), in
 * caller order (bytewise, the order every writer of several balances takes),
 * for the rest of the transaction.
 */
export async function lockBalances(trx: Trx, callerIds: readonly string[]): Promise<Map<string, Money>> {
  if (callerIds.length === 0) return new Map();
  const rows = await trx
    .selectFrom("caller_balances")
    .select(["caller_id", "currency", "balance_micros"])
    .where("caller_id", "in", [...new Set(callerIds)])
    .orderBy(sql`caller_id collate "C"`)
    .forUpdate()
    .execute();
  return new Map(rows.map((r) => [r.caller_id, { currency: r.currency, micros: r.balance_micros }]));
}

/** Whom each of `attemptIds` was debited and how much (a positive amount), for those that were. */
export async function debitsOf(db: Executor, attemptIds: readonly string[]): Promise<Map<string, { callerId: string; micros: number }>> {
  if (attemptIds.length === 0) return new Map();
  const rows = await db
    .selectFrom("ledger_entries")
    .select(["attempt_id", "caller_id", "amount_micros"])
    .where("entry_key", "in", attemptIds.map((id) => `debit:${id}`))
    .execute();
  return new Map(rows.map((r) => [r.attempt_id!, { callerId: r.caller_id, micros: -r.amount_micros }]));
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
