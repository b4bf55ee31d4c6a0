import { FINAL_EVENT_KINDS, type DeliveryEvent } from "../domain/delivery-event.js";
import { NotFoundError } from "../domain/errors.js";
import type { RandomSource } from "../domain/ports.js";
import type { Db } from "../store/database.js";
import { listDeliveryEvents, readWatchStarts, type WatchStart, type WatchStartQuery } from "../store/repositories/delivery-events.js";
import { findVerification, lastEventSeqs } from "../store/repositories/verifications.js";
import { AsyncQueue } from "../util/async-queue.js";
import { GroupRunner } from "../util/group-runner.js";
import type { Caller, ServiceDeps } from "./deps.js";
import { eventFromRow } from "./events.js";

/** Live delivery events of one verification, as they are published. */
export interface EventFeed {
  /** Calls `listener` for each event of the verification until the returned function is called. */
  subscribe(verificationId: string, listener: (event: DeliveryEvent) => void): () => void;
}

/** What a watcher receives: an event, or a keep-alive after at most `keepAliveMs` without one. */
export type WatchItem = { readonly kind: "event"; readonly event: DeliveryEvent } | { readonly kind: "keep-alive"; readonly at: Date };

/**
 * The verification's events after `afterSequence`, then live ones, each once and
 * in sequence order, ending with the final one (verified, expired, canceled,
 * wrong-code limit). An idle stream gets a keep-alive at least every `keepAliveMs` (see `keepAlivePeriod`).
 *
 * Streams that open together read their start in one statement (`deps.watchStarts`).
 *
 * The live feed may drop messages (core NATS is at most once; another `serve`
 * replica's events never reach an in-process feed), so the store is the truth:
 * it subscribes before it reads the stored events, so nothing published in
 * between is missed; a live event that skips ahead fills the gap from the
 * store; and every keep-alive checks the store first, so a dropped event,
 * the final one included, arrives at the latest one keep-alive late. That
 * check reads the verification's last event number (`deps.eventSeqReads`,
 * many streams' checks in one statement), and its events only when they moved.
 *
 * When `signal` aborts the stream fails with its reason: the server's shutdown (an UnavailableError, which the
 * client answers by watching again elsewhere with `after_sequence`), the client's cancel or its deadline. Ending
 * cleanly instead would tell the client the verification had nothing more to say.
 */
export async function* watchDelivery(
  deps: ServiceDeps,
  feed: EventFeed,
  caller: Caller,
  verificationId: string,
  afterSequence: number,
  signal: AbortSignal,
  keepAliveMs: number,
): AsyncGenerator<WatchItem> {
  const live = new AsyncQueue<DeliveryEvent>();
  const unsubscribe = feed.subscribe(verificationId, (event) => live.push(event));
  let last = afterSequence;
  const stored = async () => (await listDeliveryEvents(deps.db, verificationId, last)).map(eventFromRow);
  const keepAlive = keepAlivePeriod(keepAliveMs, deps.random);
  try {
    const start = await deps.watchStarts.submit({ verificationId, callerId: caller.id, afterSequence });
    if (start === undefined) throw new NotFoundError(`verification ${verificationId} not found`);
    const expiresAt = start.expiresAt;
    let batch = start.events.map(eventFromRow);
    for (;;) {
      signal.throwIfAborted();
      for (const event of batch) {
        last = event.sequence;
        yield { kind: "event", event };
        if (FINAL_EVENT_KINDS.has(event.kind)) return;
      }
      const untilExpiry = expiresAt.getTime() - deps.clock.now().getTime();
      const event = await live.next(Math.min(Math.max(untilExpiry, 1_000), keepAlive), signal);
      signal.throwIfAborted();
      if (event !== undefined) {
        batch = event.sequence <= last ? [] : event.sequence === last + 1 ? [event] : await stored();
        continue;
      }
      // Idle: whatever the feed dropped is in the store, and moved the verification's last event number.
      const storedSeq = await deps.eventSeqReads.submit(verificationId);
      batch = storedSeq !== undefined && storedSeq > last ? await stored() : [];
      if (batch.length > 0) continue;
      if (deps.clock.now() >= expiresAt) {
        // Past expiry with no final event stored: the stream ends once the verification has.
        const current = await findVerification(deps.db, verificationId, caller.id);
        if (current?.status !== "PENDING") return;
      }
      yield { kind: "keep-alive", at: deps.clock.now() };
    }
  } finally {
    unsubscribe();
  }
}

/**
 * Verifications' last event numbers, read for many watchers' keep-alives at
 * once. Keep-alives are spread over time (`keepAlivePeriod`), so a group
 * gathers for 50 ms before it runs: 5,000 streams' checks (333 a second at
 * the default interval) are 20 statements a second, and a keep-alive is at
 * most 50 ms later than it would be alone.
 */
export function eventSeqReads(db: Db): GroupRunner<string, number | undefined> {
  return new GroupRunner((ids) => lastEventSeqs(db, ids), { maxGroup: 1_000, maxInFlight: 1, gatherMs: 50 });
}

/**
 * Streams' openings, read many per statement: a burst of streams opening
 * (clients reconnecting after a restart) asks the pool for a few connections
 * instead of one each. No gathering time: a lone opening waits only for the
 * end of the event-loop turn.
 */
export function watchStarts(db: Db): GroupRunner<WatchStartQuery, WatchStart | undefined> {
  return new GroupRunner((queries) => readWatchStarts(db, queries), { maxGroup: 200, maxInFlight: 2 });
}

/**
 * A stream's keep-alive period: somewhere in the last quarter up to
 * `keepAliveMs`, chosen per stream, so that streams opened together (clients
 * reconnecting after a restart) do not all read the store in the same instant.
 */
export function keepAlivePeriod(keepAliveMs: number, random: RandomSource): number {
  return keepAliveMs - random.int(Math.floor(keepAliveMs / 4) + 1);
}
