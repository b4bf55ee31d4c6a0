import { guardKey } from "../domain/limits.js";
import type { CodeProtector } from "../domain/code-protector.js";

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
