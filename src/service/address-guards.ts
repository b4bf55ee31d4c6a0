import { guardKey, lockDurationMs, type AbuseLimits } from "../domain/limits.js";
import type { CodeProtector } from "../domain/code-protector.js";
import { addDestinationFailure, findDestinationGuard, lockDestination, resetDestinationFailures } from "../store/repositories/abuse-counters.js";
import type { Trx } from "../store/database.js";

/**
 * Guards of the addresses a verification may send to. Every address a plan
 * names (phone, voice phone, email, push token) has its own, kept per caller
 * under a keyed hash of the address: a plan cannot slip an address past its
 * limits by putting another one first, and one caller's wrong codes lock an
 * address for that caller only.
 */
export function guardKeysFor(protector: CodeProtector, callerId: string, addresses: readonly string[]): string[] {
  return [...new Set(addresses.map((address) => guardKey(callerId, protector.destinationKey(address))))];
}

/** When the longest lock among `keys` ends, if one is in force at `now`. */
export async function lockedUntil(trx: Trx, keys: readonly string[], now: Date): Promise<Date | undefined> {
  let until: Date | undefined;
  for (const key of keys) {
    const guard = await findDestinationGuard(trx, key);
    if (guard?.locked_until && guard.locked_until > now && (until === undefined || guard.locked_until > until)) until = guard.locked_until;
  }
  return until;
}

/** One more consecutive wrong code for each address; an address that reaches the limit is locked, for longer each time. */
export async function countWrongGuess(trx: Trx, limits: AbuseLimits, keys: readonly string[], now: Date): Promise<void> {
  for (const key of keys) {
    const guard = await addDestinationFailure(trx, key);
    if (guard.consecutive_failures >= limits.destinationFailureLock) {
      await lockDestination(trx, key, new Date(now.getTime() + lockDurationMs(limits, guard.lock_count)));
    }
  }
}

/** A correct code ends each address's run of wrong ones. */
export async function clearWrongGuesses(trx: Trx, keys: readonly string[]): Promise<void> {
  for (const key of keys) await resetDestinationFailures(trx, key);
}
