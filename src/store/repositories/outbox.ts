import { CompiledQuery } from "kysely";
import type { Executor, Trx } from "../database.js";
import type { NewOutboxRow, OutboxRow } from "../tables/outbox.js";

export interface OutboxMessage {
  readonly msgId: string;
  readonly subject: string;
  readonly payload: Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Told, after a commit that wrote outbox rows, their messages (so they are published at once). */
export type OnOutboxWritten = (messages: readonly OutboxMessage[]) => void;

/** A message as the outbox stores it. */
export function outboxRow(message: OutboxMessage, now: Date): NewOutboxRow {
  return {
    msg_id: message.msgId,
    subject: message.subject,
    payload: Buffer.from(message.payload).toString("base64"),
    headers: JSON.stringify(message.headers ?? {}),
    created_at: now,
  };
}

/**
 * The oldest unpublished rows written before `writtenBefore`, locked for this
 * relay. Other relays skip locked rows, so replicas share the backlog without
 * publishing a row twice at once.
 *
 * The relay's two statements are fixed texts, so they are prepared once per
 * connection (prepared-statements.ts) and nothing is compiled per batch: built
 * with the query builder (and `in (…)` a parameter per row, a new text for each
 * batch size) they were 4 % of `serve`'s CPU under SendOtp load (BENCHMARKS.md).
 */
export async function claimUnpublished(trx: Trx, limit: number, writtenBefore: Date): Promise<OutboxRow[]> {
  return (await trx.executeQuery<OutboxRow>(CompiledQuery.raw(CLAIM_UNPUBLISHED, [limit, writtenBefore]))).rows;
}

const CLAIM_UNPUBLISHED = `select * from "outbox" where "published_at" is null and "created_at" < $2 order by "id" limit $1 for update skip locked`;

/** Rows not yet published (the partial index `outbox_unpublished` keeps this cheap). */
export async function countUnpublished(db: Executor): Promise<number> {
  const row = await db.selectFrom("outbox").select((eb) => eb.fn.countAll<number>().as("n")).where("published_at", "is", null).executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function markPublished(trx: Trx, ids: readonly number[], now: Date): Promise<void> {
  if (ids.length === 0) return;
  await trx.executeQuery(CompiledQuery.raw(MARK_PUBLISHED, [now, ids]));
}

const MARK_PUBLISHED = `update "outbox" set "published_at" = $1 where "id" = any($2::bigint[])`;

/** Marks the rows of messages published right after their commit (outbox-publisher.ts); rows the relay took first keep its mark. */
export async function markPublishedByMsgId(db: Executor, msgIds: readonly string[], now: Date): Promise<void> {
  if (msgIds.length === 0) return;
  await db.executeQuery(CompiledQuery.raw(MARK_PUBLISHED_BY_MSG_ID, [now, msgIds]));
}

/**
 * The rows by their `msg_id` index alone. Written `where … and published_at is null`, the statement could also be
 * served by `outbox_unpublished`, and a plan made while the outbox was small read that index whole, every unpublished
 * row for each batch (200 ms a batch behind a backlog in the bench; BENCHMARKS.md (24)).
 */
const MARK_PUBLISHED_BY_MSG_ID = `update "outbox" set "published_at" = coalesce("published_at", $1) where "msg_id" = any($2::text[])`;

export function decodeOutboxRow(row: OutboxRow): OutboxMessage {
  return {
    msgId: row.msg_id,
    subject: row.subject,
    payload: Buffer.from(row.payload, "base64"),
    headers: row.headers as Record<string, string>,
  };
}

/**
 * Marks for publishing again the dispatch rows of attempts still QUEUED. For
 * the in-process bus, whose work queue dies with the process: at start it
 * hands every unfinished attempt to the workers again. A call that had already
 * started is not repeated blindly: the worker finds its recorded intent.
 */
export async function republishQueuedDispatches(db: Executor, dispatchSubjectPrefix: string): Promise<number> {
  const rows = await db
    .updateTable("outbox")
    .set({ published_at: null })
    .where("published_at", "is not", null)
    .where("subject", "like", `${dispatchSubjectPrefix}%`)
    .where("msg_id", "in", (eb) => eb.selectFrom("attempts").select("attempts.id").where("attempts.status", "=", "QUEUED"))
    .returning("id")
    .execute();
  return rows.length;
}
