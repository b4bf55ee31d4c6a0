import { encodeDispatch } from "../bus/dispatch-message.js";
import { dispatchSubject } from "../bus/subjects.js";
import type { RenderOptions } from "../domain/message.js";
import type { PlannedStep } from "../domain/plan.js";
import { generateCode } from "../domain/code.js";
import { formatMoney } from "../domain/money.js";
import type { DebitOutcome } from "../store/repositories/ledger.js";
import type { OutboxMessage } from "../store/repositories/outbox.js";
import type { AttemptRow } from "../store/tables/attempts.js";
import type { TraceContext } from "../telemetry/trace-context.js";
import type { ServiceDeps } from "./deps.js";
import type { NewDeliveryEvent } from "./events.js";

export interface QueueAttemptInput {
  readonly verificationId: string;
  readonly callerId: string;
  readonly step: PlannedStep;
  /** This attempt's own code, hashed (to check) and sealed (for the worker). */
  readonly code: AttemptCode;
  readonly render: RenderOptions;
  readonly expiresAt: Date;
  readonly trace: TraceContext;
  readonly now: Date;
}

/** A code as stored: its keyed hash and its sealed form, never the digits. */
export interface AttemptCode {
  readonly hash: string;
  readonly sealed: string;
}

/**
 * A fresh code for one attempt. Each attempt carries its own, so the code a
 * user types names the channel whose message carried it (an approval with a
 * code read from the email is not an approval of the phone).
 */
export function newAttemptCode(deps: Pick<ServiceDeps, "protector" | "random">, verificationId: string, length: number): AttemptCode {
  const code = generateCode(length, deps.random);
  return { hash: deps.protector.hash(verificationId, code), sealed: deps.protector.seal(verificationId, code) };
}

/** Why a step could not be paid for, or undefined when it was. */
export function unpaidReason(step: PlannedStep, debit: DebitOutcome): string | undefined {
  const price = { currency: step.currency, micros: step.totalPriceMicros };
  if (debit.kind === "insufficient") return `balance ${formatMoney(debit.balance)} cannot pay the ${step.channel} step (${formatMoney(price)})`;
  if (debit.kind === "wrong-currency") return `route ${step.routeId} is priced in ${price.currency}; the balance is in ${debit.balance.currency}`;
  return undefined;
}

/** A new attempt's row: all of it but what later steps of its life fill in. */
export type QueuedAttemptRow = Omit<AttemptRow, "submit_started_at" | "submit_tries" | "next_poll_at">;

/**
 * What queuing an attempt writes: the QUEUED attempt, its ATTEMPT_QUEUED event
 * (numbered when it is recorded), and the dispatch message for its channel's
 * workers (de-duplicated on the bus by attempt id).
 */
export function queuedAttempt(attemptId: string, input: QueueAttemptInput): { row: QueuedAttemptRow; event: NewDeliveryEvent; dispatch: OutboxMessage } {
  const { step, trace, now } = input;
  return {
    row: {
      id: attemptId,
      verification_id: input.verificationId,
      step_index: step.index,
      channel: step.channel,
      route_id: step.routeId,
      provider: step.provider,
      sender: step.sender,
      status: "QUEUED",
      provider_message_id: null,
      provider_error_code: null,
      provider_error_reason: null,
      currency: step.currency,
      price_micros: step.totalPriceMicros,
      trace_id: trace.traceId,
      traceparent: trace.traceparent,
      created_at: now,
      submitted_at: null,
      completed_at: null,
      code_hash: input.code.hash,
      sealed_code: input.code.sealed,
    },
    event: {
      verificationId: input.verificationId,
      kind: "ATTEMPT_QUEUED",
      attemptId,
      channel: step.channel,
      routeId: step.routeId,
      status: "QUEUED",
      currency: step.currency,
      priceMicros: step.totalPriceMicros,
      traceId: trace.traceId,
      occurredAt: now,
    },
    dispatch: {
      msgId: attemptId,
      subject: dispatchSubject(step.channel),
      payload: encodeDispatch({
        attemptId,
        verificationId: input.verificationId,
        channel: step.channel,
        routeId: step.routeId,
        provider: step.provider,
        sender: step.sender,
        to: step.address,
        sealedCode: input.code.sealed,
        render: input.render,
        callerId: input.callerId,
        expiresAt: input.expiresAt.toISOString(),
      }),
      headers: { traceparent: trace.traceparent },
    },
  };
}
