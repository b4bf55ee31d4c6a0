import type { Channel } from "../domain/channel.js";
import type { AttemptStatus } from "../domain/delivery-event.js";
import type { PlannedStep } from "../domain/plan.js";
import { effectiveStatus, remainingAttempts, type VerificationStatus } from "../domain/verification.js";
import type { AttemptRow } from "../store/tables/attempts.js";
import type { VerificationRow } from "../store/tables/verifications.js";

/** A verification as callers see it: no code, no hash, no sealed blob. */
export interface VerificationView {
  readonly id: string;
  readonly status: VerificationStatus;
  readonly policy: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly approvedAt?: Date;
  readonly remainingAttempts: number;
  readonly steps: readonly PlannedStep[];
  readonly clientReference: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly traceId: string;
}

export interface AttemptView {
  readonly id: string;
  readonly stepIndex: number;
  readonly channel: Channel;
  readonly routeId: string;
  readonly sender: string;
  readonly status: AttemptStatus;
  readonly providerMessageId?: string;
  readonly providerErrorCode?: string;
  readonly providerErrorReason?: string;
  readonly currency: string;
  readonly priceMicros: number;
  readonly createdAt: Date;
  readonly submittedAt?: Date;
  readonly completedAt?: Date;
  readonly traceId: string;
}

export function verificationView(row: VerificationRow, now: Date): VerificationView {
  return {
    id: row.id,
    status: effectiveStatus(
      {
        status: row.status as VerificationStatus,
        expiresAt: row.expires_at,
        failedAttempts: row.failed_attempts,
        maxAttempts: row.max_attempts,
      },
      now,
    ),
    policy: row.policy,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    ...(row.approved_at ? { approvedAt: row.approved_at } : {}),
    remainingAttempts: remainingAttempts({ failedAttempts: row.failed_attempts, maxAttempts: row.max_attempts }),
    steps: row.plan as PlannedStep[],
    clientReference: row.client_reference,
    metadata: row.metadata as Record<string, string>,
    traceId: row.trace_id,
  };
}

export function attemptView(row: AttemptRow): AttemptView {
  return {
    id: row.id,
    stepIndex: row.step_index,
    channel: row.channel as Channel,
    routeId: row.route_id,
    sender: row.sender,
    status: row.status as AttemptStatus,
    ...(row.provider_message_id ? { providerMessageId: row.provider_message_id } : {}),
    ...(row.provider_error_code ? { providerErrorCode: row.provider_error_code } : {}),
    ...(row.provider_error_reason ? { providerErrorReason: row.provider_error_reason } : {}),
    currency: row.currency,
    priceMicros: row.price_micros,
    createdAt: row.created_at,
    ...(row.submitted_at ? { submittedAt: row.submitted_at } : {}),
    ...(row.completed_at ? { completedAt: row.completed_at } : {}),
    traceId: row.trace_id,
  };
}
