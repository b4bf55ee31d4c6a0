/**
 * What domain and service code needs from the outside world, injected so that
 * tests can control time and randomness.
 */
import { randomBytes, randomInt, randomUUID } from "node:crypto";

export interface Clock {
  now(): Date;
}

export interface RandomSource {
  /** A uniformly distributed integer in [0, maxExclusive), from a CSPRNG. */
  int(maxExclusive: number): number;
  bytes(length: number): Buffer;
}

export interface IdGenerator {
  /** A new unique id with a readable prefix, e.g. "vrf_0f3c…". */
  next(prefix: string): string;
}

export const systemClock: Clock = { now: () => new Date() };

export const cryptoRandom: RandomSource = {
  int: (maxExclusive) => randomInt(0, maxExclusive),
  bytes: (length) => randomBytes(length),
};

export const uuidIds: IdGenerator = {
  next: (prefix) => `${prefix}_${randomUUID().replaceAll("-", "")}`,
};
