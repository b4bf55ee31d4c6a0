/** A fixed-window limit: at most `max` events per `windowMs`. */
export interface WindowLimit {
  readonly max: number;
  readonly windowMs: number;
}

/** Send and verify limits (SPEC §4). */
export interface AbuseLimits {
  /** Wrong codes accepted per verification before MAX_ATTEMPTS. */
  readonly maxWrongCodes: number;
  readonly sendsPerDestination: WindowLimit;
  readonly sendsPerCaller: WindowLimit;
  readonly sendsPerClientIp: WindowLimit;
  /** Consecutive wrong codes across verifications that lock a destination. */
  readonly destinationFailureLock: number;
  /** First lock period; each further lock doubles it, up to `maxLockMs`. */
  readonly baseLockMs: number;
  readonly maxLockMs: number;
}

export const DEFAULT_LIMITS: AbuseLimits = {
  maxWrongCodes: 5,
  sendsPerDestination: { max: 5, windowMs: 10 * 60_000 },
  sendsPerCaller: { max: 1_000, windowMs: 60_000 },
  sendsPerClientIp: { max: 20, windowMs: 10 * 60_000 },
  destinationFailureLock: 100,
  baseLockMs: 15 * 60_000,
  maxLockMs: 24 * 60 * 60_000,
};

/** Start of the fixed window that `now` falls in. */
export function windowStart(now: Date, windowMs: number): Date {
  return new Date(Math.floor(now.getTime() / windowMs) * windowMs);
}

/** Lock period for the `lockCount`-th lock of a destination (0-based): doubles each time. */
export function lockDurationMs(limits: AbuseLimits, lockCount: number): number {
  return Math.min(limits.maxLockMs, limits.baseLockMs * 2 ** Math.min(lockCount, 30));
}
