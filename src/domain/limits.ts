/** A rate limit: at most `max` events in any `windowMs` (a sliding window). */
export interface WindowLimit {
  readonly max: number;
  readonly windowMs: number;
}

/** Send and verify limits (SPEC §4). */
export interface AbuseLimits {
  /** Wrong codes accepted per verification before MAX_ATTEMPTS. */
  readonly maxWrongCodes: number;
  /** Sends per address per caller (each address a plan may send to is counted). */
  readonly sendsPerDestination: WindowLimit;
  /** Optional ceiling per address across all callers; none when undefined. */
  readonly sendsPerDestinationGlobal?: WindowLimit;
  readonly sendsPerCaller: WindowLimit;
  readonly sendsPerClientIp: WindowLimit;
  /** Sends per end-user device (`device_id`) per caller; skipped for requests without one; none when undefined. */
  readonly sendsPerDevice?: WindowLimit;
  /** Sends per caller to one destination country: a surge to a country the caller rarely serves; none when undefined. */
  readonly sendsPerCallerCountry?: WindowLimit;
  /**
   * Sends per caller to one range of 100 phone numbers (all but the last two digits alike): bursts of sequential
   * numbers (…01, …02, …03) are how pumping scripts walk a range; none when undefined.
   */
  readonly sendsPerNumberRange?: WindowLimit;
  /** Consecutive wrong codes across verifications that lock a destination. */
  readonly destinationFailureLock: number;
  /** First lock period; each further lock doubles it, up to `maxLockMs`. */
  readonly baseLockMs: number;
  readonly maxLockMs: number;
  /** Digits of a phone number (country code included) its prefix keeps: conversion and pumping are counted per prefix. */
  readonly numberPrefixDigits: number;
}

export const DEFAULT_LIMITS: AbuseLimits = {
  maxWrongCodes: 5,
  sendsPerDestination: { max: 5, windowMs: 10 * 60_000 },
  sendsPerCaller: { max: 1_000, windowMs: 60_000 },
  sendsPerClientIp: { max: 20, windowMs: 10 * 60_000 },
  sendsPerDevice: { max: 10, windowMs: 60 * 60_000 },
  sendsPerNumberRange: { max: 10, windowMs: 10 * 60_000 },
  destinationFailureLock: 100,
  baseLockMs: 15 * 60_000,
  maxLockMs: 24 * 60 * 60_000,
  numberPrefixDigits: 6,
};

/**
 * The key that windows and wrong-code locks of one address are kept under for
 * one caller: one caller's abuse (or a caller's attacker) cannot lock an
 * address for the others. `addressKey` is the keyed hash of the address, never the address.
 */
export function guardKey(callerId: string, addressKey: string): string {
  return `${callerId}:${addressKey}`;
}

/**
 * Sends counted in the sliding window that ends at `now`, estimated from the
 * current fixed window's count and the previous one's, weighted by how much of
 * the previous window the sliding one still covers. Unlike fixed windows alone,
 * it does not let a full window's worth through on each side of a boundary.
 */
export function slidingCount(now: Date, windowMs: number, current: number, previous: number): number {
  const intoWindow = (now.getTime() - windowStart(now, windowMs).getTime()) / windowMs;
  return previous * (1 - intoWindow) + current;
}

/** Start of the fixed window that `now` falls in. */
export function windowStart(now: Date, windowMs: number): Date {
  return new Date(Math.floor(now.getTime() / windowMs) * windowMs);
}

/** Lock period for the `lockCount`-th lock of a destination (0-based): doubles each time. */
export function lockDurationMs(limits: AbuseLimits, lockCount: number): number {
  return Math.min(limits.maxLockMs, limits.baseLockMs * 2 ** Math.min(lockCount, 30));
}
