import type { Executor } from "../store/database.js";
import { dropStaleParkedReceipts } from "../store/repositories/parked-receipts.js";
import type { Logger } from "../telemetry/logger.js";
import type { Clock } from "../domain/ports.js";

/**
 * Drops receipts parked longer than the grace period (no attempt ever carried
 * their message id), counting them per provider in a warning: these are the
 * "DLR for an unknown message id" cases an operator should look at.
 */
export async function dropUnmatchedReceipts(db: Executor, clock: Clock, graceMs: number, log: Logger): Promise<number> {
  const dropped = await dropStaleParkedReceipts(db, new Date(clock.now().getTime() - graceMs));
  const byProvider = new Map<string, number>();
  for (const { provider } of dropped) byProvider.set(provider, (byProvider.get(provider) ?? 0) + 1);
  for (const [provider, count] of byProvider) {
    log.warn("receipts for unknown message ids dropped after the grace period", { provider, count, graceMs });
  }
  return dropped.length;
}
