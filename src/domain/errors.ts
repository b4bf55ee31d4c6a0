/**
 * Named domain errors. Domain and service code throw these; one boundary
 * function (src/api/error-mapping.ts) turns them into ConnectError codes.
 */

/** One invalid input field, by its request path (e.g. "destination.phone"). */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

export abstract class DomainError extends Error {
  override readonly name: string = this.constructor.name;
}

/** The request itself is malformed. */
export class InvalidInputError extends DomainError {
  constructor(readonly violations: readonly FieldViolation[]) {
    super(violations.map((v) => `${v.field}: ${v.description}`).join("; "));
  }
}

/** Unknown id, or one that belongs to another caller (indistinguishable on purpose). */
export class NotFoundError extends DomainError {}

/** A send or verify limit was hit. `retryAfterMs` tells the caller when to try again. */
export class RateLimitedError extends DomainError {
  constructor(message: string, readonly retryAfterMs: number) {
    super(message);
  }
}

/** The request is valid but the system state does not allow it (balance, country, route). */
export class PreconditionError extends DomainError {}

/** An idempotency key was reused for a different request. */
export class IdempotencyConflictError extends DomainError {}

/** The caller could not be identified. */
export class UnauthenticatedError extends DomainError {}

/** A dependency (database, bus) cannot be reached right now; safe to retry. */
export class UnavailableError extends DomainError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
