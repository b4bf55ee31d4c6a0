/**
 * Verification state and the rules of VerifyOtp, as pure functions.
 * The store applies a decision with a conditional update, so two racing calls
 * cannot both be approved.
 */

/** Stored status. EXPIRED is also derived from `expiresAt` while the stored status is still PENDING. */
export type VerificationStatus = "PENDING" | "APPROVED" | "CANCELED" | "MAX_ATTEMPTS" | "EXPIRED";

export type VerifyOutcome =
  | "APPROVED"
  | "WRONG_CODE"
  | "EXPIRED"
  | "MAX_ATTEMPTS"
  | "ALREADY_APPROVED"
  | "CANCELED";

/** The part of a verification the verify rules look at. */
export interface VerificationCheckState {
  readonly status: VerificationStatus;
  readonly expiresAt: Date;
  readonly failedAttempts: number;
  readonly maxAttempts: number;
}

export const MAX_TTL_MS = 10 * 60_000;
export const DEFAULT_TTL_MS = MAX_TTL_MS;
export const DEFAULT_MAX_WRONG_CODES = 5;

/** The status a caller sees now: a pending verification past its expiry is expired. */
export function effectiveStatus(state: VerificationCheckState, now: Date): VerificationStatus {
  if (state.status === "PENDING" && now.getTime() >= state.expiresAt.getTime()) return "EXPIRED";
  return state.status;
}

/**
 * The outcome a verify call gets without looking at the code, or `undefined`
 * when the code must be compared.
 */
export function outcomeBeforeCodeCheck(state: VerificationCheckState, now: Date): VerifyOutcome | undefined {
  switch (effectiveStatus(state, now)) {
    case "APPROVED":
      return "ALREADY_APPROVED";
    case "CANCELED":
      return "CANCELED";
    case "EXPIRED":
      return "EXPIRED";
    case "MAX_ATTEMPTS":
      return "MAX_ATTEMPTS";
    case "PENDING":
      return state.failedAttempts >= state.maxAttempts ? "MAX_ATTEMPTS" : undefined;
  }
}

export function remainingAttempts(state: Pick<VerificationCheckState, "failedAttempts" | "maxAttempts">): number {
  return Math.max(0, state.maxAttempts - state.failedAttempts);
}

/** Whether nothing more can happen to a verification: no sends, no approvals. */
export function isFinal(status: VerificationStatus): boolean {
  return status !== "PENDING";
}
