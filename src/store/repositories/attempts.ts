import { sql } from "kysely";
import type { Executor, Trx } from "../database.js";
import { rollupSlot, routeOutcomeKey } from "./route-stats.js";
import type { AttemptRow, NewAttemptRow } from "../tables/attempts.js";

export async function findAttempt(db: Executor, id: string): Promise<AttemptRow | undefined> {
  return db.selectFrom("attempts").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function listAttempts(db: Executor, verificationId: string): Promise<AttemptRow[]> {
  return db.selectFrom("attempts").selectAll().where("verification_id", "=", verificationId).orderBy("step_index").execute();
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
 * False when any of that does not hold; the caller then decides under both
 * locks what to do.
 */
export async function startFirstSubmit(db: Executor, verificationId: string, attemptId: string, now: Date): Promise<boolean> {
  const { rows } = await sql<{ id: string }>`
    with wanting as (
      select v.id from verifications v
      where v.id = ${verificationId} and v.status = 'PENDING'
        and v.current_step = (select a.step_index from attempts a where a.id = ${attemptId})
      for no key update of v
    )
    update attempts set submit_started_at = ${now}, submit_tries = submit_tries + 1
    where id = ${attemptId} and status = 'QUEUED' and submit_started_at is null and exists (select 1 from wanting)
    returning id
  `.execute(db);
  return rows.length === 1;
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

/** Moves a QUEUED attempt to SUBMITTED; undefined if it was not QUEUED (already handled or canceled). */
export async function markSubmitted(
  trx: Trx,
  id: string,
  providerMessageId: string,
  now: Date,
  nextPollAt: Date | null,
): Promise<AttemptRow | undefined> {
  const slot = rollupSlot(id, now);
  return trx
    .with("sent", (db) =>
      db
        .updateTable("attempts")
        .set({ status: "SUBMITTED", provider_message_id: providerMessageId, submitted_at: now, next_poll_at: nextPollAt })
        .where("id", "=", id)
        .where("status", "=", "QUEUED")
        .returningAll(),
    )
    // Counted as sent (conversion, pumping) in the same statement: by its route, country and number prefix.
    .with("counted", (db) =>
      db
        .insertInto("conversion_counts")
        .columns(["minute", "route_id", "country", "prefix", "shard", "sent", "approved"])
        .expression((eb) =>
          eb
            .selectFrom("sent")
            .innerJoin("verifications as v", "v.id", "sent.verification_id")
            .select([
              eb.val(slot.minute).as("minute"),
              "sent.route_id",
              sql<string>`coalesce(v.plan->0->>'country', '')`.as("country"),
              sql<string>`coalesce(v.plan->0->>'numberPrefix', '')`.as("prefix"),
              eb.val(slot.shard).as("shard"),
              eb.val(1).as("sent"),
              eb.val(0).as("approved"),
            ]),
        )
        .onConflict((oc) => oc.columns(["minute", "route_id", "country", "prefix", "shard"]).doUpdateSet({ sent: sql`conversion_counts.sent + 1` })),
    )
    .selectFrom("sent")
    .selectAll()
    .executeTakeFirst();
}

/**
 * Records a final delivery status on a QUEUED or SUBMITTED attempt. Statuses only
 * move forward: a late receipt for a finished attempt changes nothing. An
 * attempt a provider had accepted is counted, in the same statement, in its
 * route's per-minute outcomes for its destination's country (route health,
 * adaptive deadlines): delivered with `latencyMs`, or not.
 */
export async function markFinished(
  trx: Trx,
  id: string,
  status: "DELIVERED" | "UNDELIVERED" | "FAILED" | "EXPIRED" | "REJECTED",
  now: Date,
  outcome: { readonly error?: { code: string; reason: string }; readonly latencyMs?: number } = {},
): Promise<AttemptRow | undefined> {
  const key = routeOutcomeKey(id, now, status === "DELIVERED" ? (outcome.latencyMs ?? 0) : undefined);
  return trx
    .with("ended", (db) =>
      db
        .updateTable("attempts")
        .set({
          status,
          completed_at: now,
          provider_error_code: outcome.error?.code ?? null,
          provider_error_reason: outcome.error?.reason ?? null,
        })
        .where("id", "=", id)
        .where("status", "in", ["QUEUED", "SUBMITTED"])
        .returningAll(),
    )
    .with("counted", (db) =>
      db
        .insertInto("route_outcomes")
        .columns(["minute", "route_id", "country", "latency_le_ms", "shard", "attempts", "latency_ms_sum"])
        .expression((eb) =>
          eb
            .selectFrom("ended")
            .innerJoin("verifications as v", "v.id", "ended.verification_id")
            .select([
              eb.val(key.minute).as("minute"),
              "ended.route_id",
              sql<string>`coalesce(v.plan->0->>'country', '')`.as("country"),
              eb.val(key.latency_le_ms).as("latency_le_ms"),
              eb.val(key.shard).as("shard"),
              eb.val(1).as("attempts"),
              eb.val(outcome.latencyMs ?? 0).as("latency_ms_sum"),
            ])
            .where("ended.submitted_at", "is not", null),
        )
        .onConflict((oc) =>
          oc.columns(["minute", "route_id", "country", "latency_le_ms", "shard"]).doUpdateSet({
            attempts: sql`route_outcomes.attempts + 1`,
            latency_ms_sum: sql`route_outcomes.latency_ms_sum + excluded.latency_ms_sum`,
          }),
        ),
    )
    .selectFrom("ended")
    .selectAll()
    .executeTakeFirst();
}

export async function findByProviderMessage(trx: Trx, provider: string, providerMessageId: string): Promise<AttemptRow | undefined> {
  return trx
    .selectFrom("attempts")
    .selectAll()
    .where("provider", "=", provider)
    .where("provider_message_id", "=", providerMessageId)
    .executeTakeFirst();
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
    .where("status", "=", "SUBMITTED")
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
