import { CompiledQuery, sql } from "kysely";
import type { Executor, Trx } from "../database.js";
import { rollupSlot, routeOutcomeKey } from "./route-stats.js";
import { rowFromJson, SqlText } from "../sql-rows.js";
import type { AttemptRow, NewAttemptRow } from "../tables/attempts.js";
import { appendEventInto, checkAdvanced, type EventRecord } from "./delivery-events.js";
import type { ParkedReceiptRow } from "../tables/parked-receipts.js";

export async function findAttempt(db: Executor, id: string): Promise<AttemptRow | undefined> {
  return db.selectFrom("attempts").selectAll().where("id", "=", id).executeTakeFirst();
}

/** The attempts of several verifications, each one's in step order. */
export async function listAttemptsOf(db: Executor, verificationIds: readonly string[]): Promise<AttemptRow[]> {
  if (verificationIds.length === 0) return [];
  return db.selectFrom("attempts").selectAll().where("verification_id", "in", [...verificationIds]).orderBy("verification_id").orderBy("step_index").execute();
}

/** Locks a QUEUED attempt for the rest of the transaction; undefined if it is not QUEUED. */
export async function lockQueuedAttempt(trx: Trx, id: string): Promise<AttemptRow | undefined> {
  return trx.selectFrom("attempts").selectAll().where("id", "=", id).where("status", "=", "QUEUED").forUpdate().executeTakeFirst();
}

/**
 * The usual claim of a send, as one autocommitted statement: records that the
 * provider call is starting if the attempt is QUEUED, no call of it has
 * started, and its verification is PENDING at the attempt's step. It locks the
 * verification's row before the attempt's (the lock order of
 * attempt-lifecycle.ts): the uncorrelated EXISTS runs first, as a one-time
 * filter, and a verification changed meanwhile is re-read under its lock.
 * Returns the attempt as it now is; undefined when any of that does not hold
 * (the caller then decides under both locks what to do).
 */
export async function startFirstSubmit(db: Executor, verificationId: string, attemptId: string, now: Date): Promise<AttemptRow | undefined> {
  const { rows } = await sql<AttemptRow>`
    with wanting as (
      select v.id from verifications v
      where v.id = ${verificationId} and v.status = 'PENDING'
        and v.current_step = (select a.step_index from attempts a where a.id = ${attemptId})
      for no key update of v
    )
    update attempts set submit_started_at = ${now}, submit_tries = submit_tries + 1
    where id = ${attemptId} and verification_id = ${verificationId} and status = 'QUEUED' and submit_started_at is null
      and exists (select 1 from wanting)
    returning *
  `.execute(db);
  return rows[0];
}

/** Records, before a provider call starts, that it is starting. */
export async function markSubmitStarted(trx: Trx, id: string, now: Date): Promise<void> {
  await trx
    .updateTable("attempts")
    .set((eb) => ({ submit_started_at: now, submit_tries: eb("submit_tries", "+", 1) }))
    .where("id", "=", id)
    .execute();
}

/** Forgets the intent after a call that certainly did not reach the provider. */
export async function clearSubmitIntent(db: Executor, id: string): Promise<void> {
  await db.updateTable("attempts").set({ submit_started_at: null }).where("id", "=", id).where("status", "=", "QUEUED").execute();
}

/** What recording a submission writes besides the attempt: its event and message, and whose receipts it takes. */
export interface SubmissionRecord extends EventRecord {
  readonly provider: string;
}

/**
 * Moves a QUEUED attempt to SUBMITTED in one statement, and with it: counts it
 * as sent (conversion, pumping: by its route, country and number prefix),
 * appends the submission's event and outbox message, and takes the receipts
 * parked for its provider message id (oldest first). Undefined, and nothing
 * written, if the attempt was not QUEUED (already handled or canceled). The
 * caller holds the verification's lock; throws if its last event number is
 * not the one the event follows (the transaction must roll back).
 */
export async function markSubmitted(
  trx: Trx,
  id: string,
  providerMessageId: string,
  now: Date,
  nextPollAt: Date | null,
  record: SubmissionRecord,
): Promise<{ attempt: AttemptRow; parked: ParkedReceiptRow[] } | undefined> {
  const slot = rollupSlot(id, now);
  // Each insert selects its row from `sent`: written once if the attempt moved, not at all if it did not.
  const statement = new SqlText().add("with sent as (\n  update attempts set status = 'SUBMITTED', provider_message_id = ").value(providerMessageId);
  statement.add(", submitted_at = ").value(now).add(", next_poll_at = ").value(nextPollAt);
  statement.add(" where id = ").value(id).add(" and status = 'QUEUED' returning *),\n");
  statement.add("counted as (\n  insert into conversion_counts (minute, route_id, country, prefix, shard, sent, approved)\n  select ").value(slot.minute);
  statement.add(", sent.route_id, coalesce(v.plan->0->>'country', ''), coalesce(v.plan->0->>'numberPrefix', ''), ").value(slot.shard).add(", 1, 0");
  statement.add(" from sent join verifications v on v.id = sent.verification_id");
  statement.add(" on conflict (minute, route_id, country, prefix, shard) do update set sent = conversion_counts.sent + 1),\n");
  appendEventInto(statement, "sent", record).add(",\n");
  statement.add("parked as (\n  delete from parked_receipts where provider = ").value(record.provider).add(" and provider_message_id = ").value(providerMessageId);
  statement.add(" and exists (select 1 from sent) returning *)\n");
  statement.add("select sent.*, (select count(*) from advanced) as advanced,");
  statement.add(" (select coalesce(jsonb_agg(to_jsonb(p) order by p.occurred_at), '[]'::jsonb) from parked p) as parked from sent");
  const { rows } = await trx.executeQuery<AttemptRow & { advanced: number | string; parked: Array<Record<string, unknown>> }>(statement.compile());
  const row = rows[0];
  if (row === undefined) return undefined;
  const { advanced, parked, ...attempt } = row;
  checkAdvanced(advanced, record.event);
  return {
    attempt,
    parked: parked.map((p) => rowFromJson<ParkedReceiptRow>(p, ["occurred_at", "received_at"])),
  };
}

/**
 * Records a final delivery status on a QUEUED or SUBMITTED attempt, and with it,
 * in one statement, the status's event and outbox message. Statuses only move
 * forward: a late receipt for a finished attempt changes nothing, and writes no
 * event (undefined). An attempt a provider had accepted is counted in its
 * route's per-minute outcomes for its destination's country (route health,
 * adaptive deadlines): delivered with `latencyMs`, or not. The caller holds the
 * verification's lock; throws if its last event number is not the one the
 * event follows (the transaction must roll back).
 */
export async function markFinished(
  trx: Trx,
  id: string,
  status: "DELIVERED" | "UNDELIVERED" | "FAILED" | "EXPIRED" | "REJECTED",
  now: Date,
  outcome: { readonly error?: { code: string; reason: string }; readonly latencyMs?: number },
  record: EventRecord,
): Promise<AttemptRow | undefined> {
  const key = routeOutcomeKey(id, now, status === "DELIVERED" ? (outcome.latencyMs ?? 0) : undefined);
  // As markSubmitted: each insert selects its row from `ended`, so nothing is written unless the attempt moved.
  const statement = new SqlText().add("with ended as (\n  update attempts set status = ").value(status).add(", completed_at = ").value(now);
  statement.add(", provider_error_code = ").value(outcome.error?.code ?? null).add(", provider_error_reason = ").value(outcome.error?.reason ?? null);
  statement.add(" where id = ").value(id).add(" and status in ('QUEUED', 'SUBMITTED') returning *),\n");
  statement.add("counted as (\n  insert into route_outcomes (minute, route_id, country, latency_le_ms, shard, attempts, latency_ms_sum)\n  select ").value(key.minute);
  statement.add(", ended.route_id, coalesce(v.plan->0->>'country', ''), ").value(key.latency_le_ms).add(", ").value(key.shard).add(", 1, ").value(outcome.latencyMs ?? 0);
  statement.add(" from ended join verifications v on v.id = ended.verification_id where ended.submitted_at is not null");
  statement.add(" on conflict (minute, route_id, country, latency_le_ms, shard)");
  statement.add(" do update set attempts = route_outcomes.attempts + 1, latency_ms_sum = route_outcomes.latency_ms_sum + excluded.latency_ms_sum),\n");
  appendEventInto(statement, "ended", record).add("\nselect ended.*, (select count(*) from advanced) as advanced from ended");
  const { rows } = await trx.executeQuery<AttemptRow & { advanced: number | string }>(statement.compile());
  const row = rows[0];
  if (row === undefined) return undefined;
  const { advanced, ...attempt } = row;
  checkAdvanced(advanced, record.event);
  return attempt;
}

/** An attempt found by its provider message id, with what a receipt needs of its verification, read under its lock. */
export interface ReceiptTarget {
  readonly attempt: AttemptRow;
  readonly currentStep: number;
  readonly eventSeq: number;
}

const LOCK_BY_PROVIDER_MESSAGE = `select a.*, v.current_step as verification_current_step, v.event_seq as verification_event_seq
  from attempts a join verifications v on v.id = a.verification_id
  where a.provider = $1 and a.provider_message_id = $2
  for no key update of v`;

/**
 * The attempt carrying a provider message id, and its verification's lock (the
 * lock order's second), in one statement. The verification's figures are its
 * latest, read under the lock; the attempt's row is as of the statement's
 * start, so only its fixed fields (ids, route, trace, submission time) are for
 * use: its status is for the write that follows to check. Undefined when no
 * attempt carried the id as the statement started.
 */
export async function lockByProviderMessage(trx: Trx, provider: string, providerMessageId: string): Promise<ReceiptTarget | undefined> {
  type Row = AttemptRow & { verification_current_step: number; verification_event_seq: number };
  const { rows } = await trx.executeQuery<Row>(CompiledQuery.raw(LOCK_BY_PROVIDER_MESSAGE, [provider, providerMessageId]));
  if (rows[0] === undefined) return undefined;
  const { verification_current_step: currentStep, verification_event_seq: eventSeq, ...attempt } = rows[0];
  return { attempt, currentStep, eventSeq };
}

/**
 * Claims submitted attempts of the given providers whose receipt poll is due,
 * pushing their next poll to `nextPollAt`. Replicas skip each other's claims.
 */
export async function claimDuePolls(
  trx: Trx,
  providers: readonly string[],
  now: Date,
  submittedAfter: Date,
  nextPollAt: Date,
  limit: number,
): Promise<AttemptRow[]> {
  if (providers.length === 0) return [];
  const due = await trx
    .selectFrom("attempts")
    .select("id")
    // Written into the statement, so that `attempts_due_poll` (submitted attempts) serves its cached plan too (see `PENDING`, verifications.ts).
    .where("status", "=", sql.lit("SUBMITTED"))
    .where("provider", "in", [...providers])
    .where("next_poll_at", "<=", now)
    .where("submitted_at", ">", submittedAfter)
    .orderBy("next_poll_at")
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute();
  if (due.length === 0) return [];
  return trx
    .updateTable("attempts")
    .set({ next_poll_at: nextPollAt })
    .where(
      "id",
      "in",
      due.map((d) => d.id),
    )
    .returningAll()
    .execute();
}

/**
 * Appends `update attempts … returning id` for a set-based write's CTE: cancels
 * the attempts whose `column` is one of `ids` and whose provider call has not
 * started, by the same rule as `cancelUnstarted`.
 */
export function cancelUnstartedInto(statement: SqlText, column: "id" | "verification_id", ids: readonly string[], now: Date): SqlText {
  statement.add("update attempts set status = 'CANCELED', completed_at = ").value(now);
  statement.add(` where "${column}" = any(`).value(ids).add("::text[]) and status = 'QUEUED' and submit_started_at is null returning id");
  return statement;
}

/**
 * Cancels a verification's attempts whose provider call has not started. An
 * attempt with a call in flight (`submit_started_at` set) is left QUEUED: its
 * message may be out, so it stays charged and records its provider id when the
 * call returns. `onlyAttemptId` narrows it to one attempt.
 */
export async function cancelUnstarted(trx: Trx, verificationId: string, now: Date, onlyAttemptId?: string): Promise<AttemptRow[]> {
  let update = trx
    .updateTable("attempts")
    .set({ status: "CANCELED", completed_at: now })
    .where("verification_id", "=", verificationId)
    .where("status", "=", "QUEUED")
    .where("submit_started_at", "is", null);
  if (onlyAttemptId !== undefined) update = update.where("id", "=", onlyAttemptId);
  return update.returningAll().execute();
}

/** Of attempts sharing one code, the one whose message most plausibly carried it: the latest delivered, else the latest submitted. */
export function latestReaching<A extends { readonly status: string }>(attempts: readonly A[]): A | undefined {
  const latest = (status: string) => attempts.filter((a) => a.status === status).at(-1);
  return latest("DELIVERED") ?? latest("SUBMITTED") ?? attempts.at(-1);
}
