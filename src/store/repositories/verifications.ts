import { CompiledQuery, sql, type Expression } from "kysely";
import type { Executor, Trx } from "../database.js";
import { rowFromJson, SqlText } from "../sql-rows.js";
import { cancelUnstartedInto } from "./attempts.js";
import type { AttemptRow } from "../tables/attempts.js";
import type { DeliveryEventRow, NewDeliveryEventRow } from "../tables/delivery-events.js";
import type { NewOutboxRow } from "../tables/outbox.js";
import type { NewVerificationRow, VerificationRow } from "../tables/verifications.js";

export async function insertVerification(trx: Trx, row: NewVerificationRow): Promise<void> {
  await trx.insertInto("verifications").values(row).execute();
}

/** The caller's verification, or undefined for an unknown id or another caller's. */
export async function findVerification(db: Executor, id: string, callerId: string): Promise<VerificationRow | undefined> {
  return db.selectFrom("verifications").selectAll().where("id", "=", id).where("caller_id", "=", callerId).executeTakeFirst();
}

/** A verification with its attempts (in step order) and its events (in order). */
export interface VerificationRecord {
  readonly verification: VerificationRow;
  readonly attempts: AttemptRow[];
  readonly events: DeliveryEventRow[];
}

/**
 * The caller's verification with its attempts and events, in one statement
 * (they come through JSON, and their times back to Dates); undefined for an
 * unknown id or another caller's.
 */
export async function readVerificationRecord(db: Executor, id: string, callerId: string): Promise<VerificationRecord | undefined> {
  type Row = VerificationRow & { record_attempts: Array<Record<string, unknown>>; record_events: Array<Record<string, unknown>> };
  const { rows } = await db.executeQuery<Row>(CompiledQuery.raw(VERIFICATION_RECORD, [id, callerId]));
  if (rows[0] === undefined) return undefined;
  const { record_attempts: attempts, record_events: events, ...verification } = rows[0];
  return {
    verification,
    attempts: attempts.map((a) => rowFromJson<AttemptRow>(a, ATTEMPT_TIMES)),
    events: events.map((e) => rowFromJson<DeliveryEventRow>(e, EVENT_TIMES)),
  };
}

const VERIFICATION_RECORD = `select v.*,
  (select coalesce(jsonb_agg(to_jsonb(a) order by a.step_index), '[]'::jsonb) from attempts a where a.verification_id = v.id) as record_attempts,
  (select coalesce(jsonb_agg(to_jsonb(e) order by e.sequence), '[]'::jsonb) from delivery_events e where e.verification_id = v.id) as record_events
  from verifications v where v.id = $1 and v.caller_id = $2`;
const ATTEMPT_TIMES = ["created_at", "submitted_at", "completed_at", "submit_started_at", "next_poll_at"] as const;
const EVENT_TIMES = ["occurred_at"] as const;

/**
 * The last event number of each verification in `ids`, in their order
 * (undefined for one that does not exist): one statement for many watchers.
 */
export async function lastEventSeqs(db: Executor, ids: readonly string[]): Promise<Array<number | undefined>> {
  const { rows } = await db.executeQuery<{ id: string; event_seq: number }>(CompiledQuery.raw(LAST_EVENT_SEQS, [ids]));
  const seqs = new Map(rows.map((r) => [r.id, r.event_seq]));
  return ids.map((id) => seqs.get(id));
}

const LAST_EVENT_SEQS = `select "id", "event_seq" from "verifications" where "id" = any($1::text[])`;

/**
 * Locks a verification for the rest of the transaction: the first lock every
 * writer of a verification or its attempts takes (see attempt-lifecycle.ts).
 * NO KEY UPDATE, so inserts of attempts and events referencing it do not wait.
 */
export async function lockVerification(trx: Trx, id: string): Promise<VerificationRow | undefined> {
  return trx.selectFrom("verifications").selectAll().where("id", "=", id).forNoKeyUpdate().executeTakeFirst();
}

/** A verification locked to be ended: what its last event needs, read under the lock. */
export interface EndingVerification {
  readonly id: string;
  readonly status: string;
  readonly trace_id: string;
  readonly event_seq: number;
  /** The stored trace context of its first attempt, the parent of the step that ends it. */
  readonly traceparent: string | null;
}

/** Locks the caller's verification to end it; undefined for an unknown id or another caller's. */
export async function lockForEnding(trx: Trx, id: string, callerId: string): Promise<EndingVerification | undefined> {
  return trx
    .selectFrom("verifications")
    .select(["id", "status", "trace_id", "event_seq", (eb) => firstTraceparent(eb.ref("verifications.id")).as("traceparent")])
    .where("id", "=", id)
    .where("caller_id", "=", callerId)
    .forNoKeyUpdate()
    .executeTakeFirst();
}

/**
 * `status = 'PENDING'` written into the statement, not passed as a parameter: the partial indexes of pending
 * verifications (`verifications_due_step`, `verifications_pending_expiry`) then serve the statement's cached
 * (generic) plan too. With the status as a parameter that plan could not use them, and once statistics from a
 * small table made it look cheap, each claim of the bench's drain read and sorted the whole table (1 s a claim;
 * BENCHMARKS.md (24)).
 */
const PENDING = sql.lit("PENDING");

/** Pending verifications past their expiry, locked for this sweeper (other replicas skip them). */
export async function claimExpired(trx: Trx, now: Date, limit: number): Promise<EndingVerification[]> {
  return trx
    .selectFrom("verifications")
    .select(["id", "status", "trace_id", "event_seq", (eb) => firstTraceparent(eb.ref("verifications.id")).as("traceparent")])
    .where("status", "=", PENDING)
    .where("expires_at", "<=", now)
    .orderBy("expires_at")
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute();
}

/** Pending verifications ended together, each with the one event that says so. */
export interface EndingsWrite {
  readonly status: "CANCELED" | "EXPIRED";
  readonly now: Date;
  /** Each verification and its last event number as read under its lock: it must still be pending at that number. */
  readonly ended: ReadonlyArray<{ readonly id: string; readonly heldEventSeq: number }>;
  /** One event per verification, numbered `heldEventSeq + 1`. */
  readonly events: readonly NewDeliveryEventRow[];
  readonly outbox: readonly NewOutboxRow[];
}

/**
 * Ends verifications the caller's transaction has locked, in one statement
 * whatever their number: their status, their event and its outbox message,
 * and their attempts no provider call has started, canceled. Throws if one
 * was no longer pending at its held event number (the transaction must roll
 * back). Returns the ids of the attempts it canceled, to be refunded.
 */
export async function endVerifications(trx: Trx, write: EndingsWrite): Promise<string[]> {
  if (write.ended.length === 0) return [];
  // Written as text (SqlText), as the scheduler's moves are: an expiry batch is hundreds of values.
  const statement = new SqlText().add("with ended as (\n  update verifications v set status = ").value(write.status).add(", ended_at = ").value(write.now);
  statement.add(", event_seq = e.held_event_seq::int + 1\n  from (values ");
  write.ended.forEach((e, i) => statement.add(i > 0 ? ", (" : "(").value(e.id).add(", ").value(e.heldEventSeq).add(")"));
  statement.add(") as e(id, held_event_seq)\n  where v.id = e.id and v.status = 'PENDING' and v.event_seq = e.held_event_seq::int\n  returning v.id),\n");
  cancelUnstartedInto(statement.add("canceled as ("), "verification_id", write.ended.map((e) => e.id), write.now).add("),\n");
  statement.add("new_events as (").insertRows("delivery_events", write.events).add(" returning sequence),\n");
  statement.add("new_messages as (").insertRows("outbox", write.outbox).add(" returning id)\n");
  statement.add("select 'ended' as kind, id from ended union all select 'canceled' as kind, id from canceled");
  const { rows } = await trx.executeQuery<{ kind: "ended" | "canceled"; id: string }>(statement.compile());
  const ended = rows.filter((r) => r.kind === "ended").length;
  if (ended !== write.ended.length) throw new Error(`endings out of step with the database: ${ended} of ${write.ended.length} verifications ended`);
  return rows.filter((r) => r.kind === "canceled").map((r) => r.id);
}

/** The last event number of a verification; read under its lock, it is the number the next event follows. */
export async function lastEventSequence(trx: Trx, id: string): Promise<number> {
  const row = await trx.selectFrom("verifications").select("event_seq").where("id", "=", id).executeTakeFirstOrThrow();
  return row.event_seq;
}

/** Brings the fallback plan's next look forward to now, if the failed step is still the current one. */
export async function escalateNow(trx: Trx, id: string, stepIndex: number, now: Date): Promise<void> {
  await trx
    .updateTable("verifications")
    .set({ next_step_at: now })
    .where("id", "=", id)
    .where("status", "=", "PENDING")
    .where("current_step", "=", stepIndex)
    .execute();
}

/** Locks up to `limit` pending verifications whose plans are due, oldest first, skipping rows others hold. */
export async function claimDuePlans(trx: Trx, now: Date, limit: number): Promise<VerificationRow[]> {
  return trx
    .selectFrom("verifications")
    .selectAll()
    .where("status", "=", PENDING)
    .where("next_step_at", "<=", now)
    .orderBy("next_step_at")
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute();
}

/** Locks one verification if its plan is (still) due and no one else holds it. */
export async function claimDuePlan(trx: Trx, id: string, now: Date): Promise<VerificationRow | undefined> {
  return trx
    .selectFrom("verifications")
    .selectAll()
    .where("id", "=", id)
    .where("status", "=", "PENDING")
    .where("next_step_at", "<=", now)
    .forUpdate()
    .skipLocked()
    .executeTakeFirst();
}

/** Moves a pending plan's next look to `at`. */
export async function postponePlan(db: Executor, id: string, at: Date): Promise<void> {
  await db.updateTable("verifications").set({ next_step_at: at }).where("id", "=", id).where("status", "=", "PENDING").execute();
}

/** The trace context stored with a verification's first attempt (the send's): the verification's trace. */
export function firstTraceparent(verificationId: Expression<string>) {
  return sql<string | null>`(select a.traceparent from attempts a where a.verification_id = ${verificationId} order by a.step_index limit 1)`;
}

/** Sends of a route to a country, `[since, until)`, whose delivery receipts no longer show that a code arrived. */
export interface DistrustedSends {
  readonly routeId: string;
  /** ISO 3166-1 alpha-2 of the plan's first step, as conversion is counted ('' for none). */
  readonly country: string;
  readonly since: Date;
  readonly until?: Date;
}

/**
 * Makes pending plans that stopped on such a delivered send due again, so the scheduler judges them once more (and
 * moves them on, see `judgeStep`). A plan is reopened once per attempt: not if it already moved on from it (a
 * FALLBACK_TRIGGERED event names the attempt). Found through the pending verifications, which expire within
 * minutes, so the statement does not grow with history. Returns how many plans it reopened.
 */
export async function reopenPlansOnDistrustedSends(db: Executor, sends: DistrustedSends, now: Date): Promise<number> {
  const result = await sql`
    update verifications v set next_step_at = ${now}
    from attempts a
    where v.status = 'PENDING' and v.expires_at > ${now} and v.next_step_at is null
      and a.verification_id = v.id and a.step_index = v.current_step
      and a.route_id = ${sends.routeId} and a.status = 'DELIVERED'
      and a.created_at >= ${sends.since} and a.created_at < ${sends.until ?? now}
      and coalesce(v.plan->0->>'country', '') = ${sends.country}
      and not exists (select 1 from delivery_events e where e.verification_id = v.id and e.kind = 'FALLBACK_TRIGGERED' and e.attempt_id = a.id)`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
