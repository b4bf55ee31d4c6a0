import type { RandomSource } from "./ports.js";

export const MIN_CODE_LENGTH = 4;
export const MAX_CODE_LENGTH = 10;
export const DEFAULT_CODE_LENGTH = 6;

/**
 * A numeric one-time code of `length` digits, uniformly distributed
 * (leading zeros included), drawn from a CSPRNG.
 */
export function generateCode(length: number, random: RandomSource): string {
  if (!Number.isInteger(length) || length < MIN_CODE_LENGTH || length > MAX_CODE_LENGTH) {
    throw new RangeError(`code length must be ${MIN_CODE_LENGTH}–${MAX_CODE_LENGTH}, got ${length}`);
  }
  // 10^10 < 2^48, the range limit of crypto.randomInt, so one draw covers every length.
  return random.int(10 ** length).toString().padStart(length, "0");
}
