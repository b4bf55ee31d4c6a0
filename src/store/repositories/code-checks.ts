import { sql, type RawBuilder } from "kysely";
import type { Db, Trx } from "../database.js";
import { insertValues } from "../sql-rows.js";
import { rollupSlot } from "./route-stats.js";
import type { NewDeliveryEventRow } from "../tables/delivery-events.js";
import type { NewOutboxRow } from "../tables/outbox.js";
import type { VerificationRow } from "../tables/verifications.js";

/** An attempt as a code check sees it: whose code it carries, and whether it may still be canceled. */
export interface CodeCandidate {
  readonly id: string;
  readonly status: string;
  readonly channel: string;
  readonly route_id: string;
  /** Null on attempts older than per-attempt codes (the verification's code counts for them). */
  readonly code_hash: string | null;
  /** QUEUED and no provider call started: approval cancels it. */
  readonly unsent: boolean;
}

/** The columns of a verification a code check reads. */
export type CheckedVerification = Pick<
  VerificationRow,
  "id" | "status" | "expires_at" | "failed_attempts" | "max_attempts" | "event_seq" | "trace_id" | "guard_keys" | "code_hash"
>;

export interface CodeCheckState {
  readonly verification: CheckedVerification;
  /** In step order. */
  readonly attempts: readonly CodeCandidate[];
  /** The longest lock in force on the verification's addresses, if any. */
  readonly lockedUntil: Date | undefined;
  /** The trace context stored with the first attempt (the send's): the verification's trace. */
  readonly traceparent: string | undefined;
  /** The destination phone number's country, if it has one (metrics label). */
  readonly country: string | undefined;
}

/**
 * Everything a code check decides from, in one statement, without locks: the
 * verification, its attempts' code hashes, the locks on its addresses. The
 * decision is then written with a conditional update that fails if the
 * verification moved on meanwhile (`approveCode`, `countWrongCode`). One row
 * per attempt (the verification's columns repeated); plain SQL, as the query
 * builder's compilation cost more than the statement itself on this hot path.
 */
export async function readCodeCheck(db: Db, id: string, callerId: string, now: Date): Promise<CodeCheckState | undefined> {
  const { rows } = await sql<CheckedVerification & { a_id: string | null; a_status: string; a_channel: string; a_route_id: string; a_code_hash: string | null; a_unsent: boolean; a_traceparent: string | null; country: string | null; locked_until: Date | null }>`
    select v.id, v.status, v.expires_at, v.failed_attempts, v.max_attempts, v.event_seq, v.trace_id, v.guard_keys, v.code_hash,
      a.id as a_id, a.status as a_status, a.channel as a_channel, a.route_id as a_route_id, a.code_hash as a_code_hash,
      a.status = 'QUEUED' and a.submit_started_at is null as a_unsent, a.traceparent as a_traceparent,
      v.plan->0->>'country' as country,
      (select max(g.locked_until) from destination_guards g
        where g.destination_key in (select jsonb_array_elements_text(v.guard_keys)) and g.locked_until > ${now}) as locked_until
    from verifications v left join attempts a on a.verification_id = v.id
    where v.id = ${id} and v.caller_id = ${callerId}
    order by a.step_index
  `.execute(db);
  const first = rows[0];
  if (first === undefined) return undefined;
  const { status, expires_at, failed_attempts, max_attempts, event_seq, trace_id, guard_keys, code_hash, locked_until } = first;
  return {
    verification: { id: first.id, status, expires_at, failed_attempts, max_attempts, event_seq, trace_id, guard_keys, code_hash },
    attempts: rows
      .filter((r) => r.a_id !== null)
      .map((r) => ({ id: r.a_id!, status: r.a_status, channel: r.a_channel, route_id: r.a_route_id, code_hash: r.a_code_hash, unsent: r.a_unsent })),
    lockedUntil: locked_until === null ? undefined : new Date(locked_until),
    traceparent: first.a_traceparent ?? undefined,
    country: first.country ?? undefined,
  };
}

/** A verification that can still take a code: pending, unexpired, under its wrong-code limit. */
function openForCode(now: Date): RawBuilder<boolean> {
  return sql<boolean>`status = 'PENDING' and expires_at > ${now} and failed_attempts < max_attempts`;
}

export interface Approval {
  readonly id: string;
  readonly now: Date;
  readonly attemptId: string | null;
  /** The verification's last event number as read: the approval happens only if it is still that. */
  readonly seenSequence: number;
  readonly guardKeys: readonly string[];
  /** The VERIFIED event, numbered seenSequence + 1, and its outbox message. */
  readonly event: NewDeliveryEventRow;
  readonly message: NewOutboxRow;
}

/**
 * Approves a verification still pending, unexpired, under its wrong-code
 * limit and with no event since it was read; ends its addresses' runs of
 * wrong codes; appends the VERIFIED event and its message — one statement.
 * Undefined when the verification moved on: the caller rolls back (the event
 * rows may have been written) and reads again.
 */
export async function approveCode(trx: Trx, approval: Approval): Promise<CheckedVerification | undefined> {
  const { id, now, seenSequence } = approval;
  const slot = rollupSlot(approval.attemptId ?? id, now);
  const { rows } = await sql<CheckedVerification>`
    with approved as (
      update verifications set status = 'APPROVED', approved_at = ${now}, ended_at = ${now},
        approved_attempt_id = ${approval.attemptId}, event_seq = ${seenSequence + 1}
      where id = ${id} and ${openForCode(now)} and event_seq = ${seenSequence}
      returning id, status, expires_at, failed_attempts, max_attempts, event_seq, trace_id, guard_keys, code_hash
    ), cleared as (
      update destination_guards set consecutive_failures = 0
      where destination_key in (select jsonb_array_elements_text(${JSON.stringify(approval.guardKeys)}::jsonb))
        and consecutive_failures <> 0 and exists (select 1 from approved)
    ), event as (
      -- A racing approval may hold this number already: then nothing is written here, and the caller rolls back.
      insert into delivery_events ${insertValues([approval.event])} on conflict do nothing
    ), message as (
      insert into outbox ${insertValues([approval.message])} on conflict (msg_id) do nothing
    ), converted as (
      -- An approval for the route that delivered the code (conversion, pumping), by country and number prefix.
      insert into conversion_counts (minute, route_id, country, prefix, shard, sent, approved)
      select ${slot.minute}::timestamptz, a.route_id, coalesce(v.plan->0->>'country', ''), coalesce(v.plan->0->>'numberPrefix', ''), ${slot.shard}, 0, 1
      from verifications v join attempts a on a.id = ${approval.attemptId}
      where v.id = ${id} and exists (select 1 from approved)
      on conflict (minute, route_id, country, prefix, shard) do update set approved = conversion_counts.approved + 1
    )
    select * from approved
  `.execute(trx);
  return rows[0];
}

export interface WrongCode {
  readonly id: string;
  readonly now: Date;
  readonly guardKeys: readonly string[];
  /** Consecutive wrong codes that lock an address. */
  readonly failureLock: number;
  /** Lock period by how many times the address was locked before (the last one for any more). */
  readonly lockDurationsMs: readonly number[];
}

/**
 * Counts one wrong code on a verification still open for codes (the last
 * allowed one moves it to MAX_ATTEMPTS) and one more consecutive failure on
 * each of its addresses, locking those that reach the limit — one statement,
 * the verification's row first and then the addresses' in key order (the
 * lifecycle's lock order). Undefined when the verification was no longer open.
 */
export async function countWrongCode(trx: Trx, wrong: WrongCode): Promise<VerificationRow | undefined> {
  const { id, now, failureLock } = wrong;
  const durations = JSON.stringify(wrong.lockDurationsMs);
  const last = wrong.lockDurationsMs.length - 1;
  const lockFor = (lockCount: unknown) => sql`${now}::timestamptz + ((${durations}::jsonb ->> least(${lockCount}, ${last}))::bigint * interval '1 millisecond')`;
  const { rows } = await sql<VerificationRow>`
    with counted as (
      update verifications set
        failed_attempts = failed_attempts + 1,
        status = case when failed_attempts + 1 >= max_attempts then 'MAX_ATTEMPTS' else status end,
        ended_at = case when failed_attempts + 1 >= max_attempts then ${now}::timestamptz else ended_at end
      where id = ${id} and ${openForCode(now)}
      returning *
    ), guarded as (
      insert into destination_guards as g (destination_key, consecutive_failures, lock_count, locked_until)
      select key,
        case when 1 >= ${failureLock} then 0 else 1 end,
        case when 1 >= ${failureLock} then 1 else 0 end,
        case when 1 >= ${failureLock} then ${lockFor(0)} end
      from jsonb_array_elements_text(${JSON.stringify(wrong.guardKeys)}::jsonb) as key
      where exists (select 1 from counted)
      order by key collate "C"
      on conflict (destination_key) do update set
        consecutive_failures = case when g.consecutive_failures + 1 >= ${failureLock} then 0 else g.consecutive_failures + 1 end,
        locked_until = case when g.consecutive_failures + 1 >= ${failureLock} then ${lockFor(sql`g.lock_count`)} else g.locked_until end,
        lock_count = case when g.consecutive_failures + 1 >= ${failureLock} then g.lock_count + 1 else g.lock_count end
      returning 1
    )
    select * from counted
  `.execute(trx);
  return rows[0];
}
