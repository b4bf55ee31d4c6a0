import { sql } from "kysely";
import type { Db, Executor } from "../database.js";
import { SqlText } from "../sql-rows.js";
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
 * verification, its attempts' code hashes, the locks on its addresses (found
 * by key as `= any(array)`: as `in (select …)` the planner reads every guard). The
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
        where g.destination_key = any(array(select jsonb_array_elements_text(v.guard_keys))) and g.locked_until > ${now}) as locked_until
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

/** Appends the condition of a verification that can still take a code: pending, unexpired, under its wrong-code limit. */
function openForCodeInto(statement: SqlText, now: Date): SqlText {
  return statement.add("status = 'PENDING' and expires_at > ").value(now).add(" and failed_attempts < max_attempts");
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
 * wrong codes; appends the VERIFIED event and its message — one statement,
 * which writes nothing unless it approves, so it may run alone (autocommitted).
 * Undefined when the verification moved on: the caller reads again.
 */
export async function approveCode(db: Executor, approval: Approval): Promise<CheckedVerification | undefined> {
  const { id, now, seenSequence } = approval;
  const slot = rollupSlot(approval.attemptId ?? id, now);
  const statement = new SqlText().add("with approved as (\n  update verifications set status = 'APPROVED', approved_at = ").value(now).add(", ended_at = ").value(now);
  statement.add(", approved_attempt_id = ").value(approval.attemptId).add(", event_seq = ").value(seenSequence + 1);
  openForCodeInto(statement.add(" where id = ").value(id).add(" and "), now).add(" and event_seq = ").value(seenSequence);
  statement.add(" returning id, status, expires_at, failed_attempts, max_attempts, event_seq, trace_id, guard_keys, code_hash),\n");
  statement.add("cleared as (\n  update destination_guards set consecutive_failures = 0");
  statement.add(" where destination_key = any(").value(approval.guardKeys).add("::text[])");
  statement.add(" and consecutive_failures <> 0 and exists (select 1 from approved)),\n");
  // Numbered after the event read: free, as every event's writer moves `event_seq` on, which `approved` checked.
  statement.add("event as (").insertRowIf("delivery_events", approval.event, "approved").add("),\n");
  statement.add("message as (").insertRowIf("outbox", approval.message, "approved").add("),\n");
  // An approval for the route that delivered the code (conversion, pumping), by country and number prefix.
  statement.add("converted as (\n  insert into conversion_counts (minute, route_id, country, prefix, shard, sent, approved)\n  select ").value(slot.minute);
  statement.add("::timestamptz, a.route_id, coalesce(v.plan->0->>'country', ''), coalesce(v.plan->0->>'numberPrefix', ''), ").value(slot.shard).add(", 0, 1");
  statement.add(" from verifications v join attempts a on a.id = ").value(approval.attemptId).add(" where v.id = ").value(id).add(" and exists (select 1 from approved)");
  statement.add(" on conflict (minute, route_id, country, prefix, shard) do update set approved = conversion_counts.approved + 1)\n");
  statement.add("select * from approved");
  const { rows } = await db.executeQuery<CheckedVerification>(statement.compile());
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
  /** Count it only if it is not the verification's last allowed one (that one ends the verification, which takes more than this statement). */
  readonly onlyIfNotLast: boolean;
}

/**
 * Counts one wrong code on a verification still open for codes (the last
 * allowed one moves it to MAX_ATTEMPTS) and one more consecutive failure on
 * each of its addresses, locking those that reach the limit — one statement,
 * the verification's row first and then the addresses' in key order (the
 * lifecycle's lock order). Undefined when the verification was no longer open
 * (or, with `onlyIfNotLast`, was at its last try).
 */
export async function countWrongCode(db: Executor, wrong: WrongCode): Promise<VerificationRow | undefined> {
  const { id, now, failureLock } = wrong;
  const durations = JSON.stringify(wrong.lockDurationsMs);
  const last = wrong.lockDurationsMs.length - 1;
  const statement = new SqlText();
  const lockFor = (lockCount: string) =>
    statement.value(now).add("::timestamptz + ((").value(durations).add("::jsonb ->> least(").add(lockCount).add(", ").value(last).add("))::bigint * interval '1 millisecond')");
  const reachesLock = (failures: string) => statement.add(`case when ${failures} >= `).value(failureLock);
  statement.add("with counted as (\n  update verifications set failed_attempts = failed_attempts + 1,");
  statement.add(" status = case when failed_attempts + 1 >= max_attempts then 'MAX_ATTEMPTS' else status end,");
  statement.add(" ended_at = case when failed_attempts + 1 >= max_attempts then ").value(now).add("::timestamptz else ended_at end");
  openForCodeInto(statement.add(" where id = ").value(id).add(" and "), now);
  if (wrong.onlyIfNotLast) statement.add(" and failed_attempts + 1 < max_attempts");
  statement.add(" returning *),\n");
  statement.add("guarded as (\n  insert into destination_guards as g (destination_key, consecutive_failures, lock_count, locked_until, last_failed_at)\n  select key, ");
  reachesLock("1").add(" then 0 else 1 end, ");
  reachesLock("1").add(" then 1 else 0 end, ");
  reachesLock("1").add(" then ");
  lockFor("0").add(" end, ").value(now).add("::timestamptz from jsonb_array_elements_text(").value(JSON.stringify(wrong.guardKeys)).add("::jsonb) as key");
  statement.add(' where exists (select 1 from counted) order by key collate "C"');
  statement.add("\n  on conflict (destination_key) do update set last_failed_at = excluded.last_failed_at, consecutive_failures = ");
  reachesLock("g.consecutive_failures + 1").add(" then 0 else g.consecutive_failures + 1 end, locked_until = ");
  reachesLock("g.consecutive_failures + 1").add(" then ");
  lockFor("g.lock_count").add(" else g.locked_until end, lock_count = ");
  reachesLock("g.consecutive_failures + 1").add(" then g.lock_count + 1 else g.lock_count end returning 1)\n");
  statement.add("select * from counted");
  const { rows } = await db.executeQuery<VerificationRow>(statement.compile());
  return rows[0];
}
