import { applyReceipt, type OutcomeDeps } from "../service/attempt-lifecycle.js";
import { claimDuePolls } from "../store/repositories/attempts.js";
import { errorFields, type Logger } from "../telemetry/logger.js";
import type { ReceiptPoller } from "./receipt-source.js";
import { withTimeLimit } from "../util/time-limit.js";

/** Submitted attempts older than this are no longer polled: their receipt will not come. */
const POLL_HORIZON_MS = 24 * 3_600_000;
const POLL_TIMEOUT_MS = 10_000;

/**
 * One round of receipt polling: claims due attempts of polled providers
 * (`FOR UPDATE SKIP LOCKED`, so replicas share them), moves their next poll
 * one interval on, and asks each provider. Returns how many were polled.
 */
export async function pollDueReceipts(
  deps: OutcomeDeps,
  pollers: ReadonlyMap<string, ReceiptPoller>,
  log: Logger,
  batch: number,
): Promise<number> {
  let polled = 0;
  for (const poller of pollers.values()) {
    const now = deps.clock.now();
    const due = await deps.db.transaction().execute((trx) =>
      claimDuePolls(trx, [poller.provider], now, new Date(now.getTime() - POLL_HORIZON_MS), new Date(now.getTime() + poller.intervalMs), batch),
    );
    await Promise.all(
      due.map(async (attempt) => {
        try {
          const receipt = await withTimeLimit(POLL_TIMEOUT_MS, (signal) => poller.poll(attempt.provider_message_id!, signal));
          if (receipt !== undefined) await applyReceipt(deps, receipt);
        } catch (error) {
          log.warn("receipt poll failed", { provider: poller.provider, attemptId: attempt.id, ...errorFields(error) });
        }
      }),
    );
    polled += due.length;
  }
  return polled;
}
