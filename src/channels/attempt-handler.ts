import type { BusMessage, Settlement } from "../bus/bus.js";
import { redeliveryDelayMs } from "../bus/bus.js";
import { decodeDispatch, type DispatchMessage } from "../bus/dispatch-message.js";
import type { CodeProtector } from "../domain/code-protector.js";
import type { Channel } from "../domain/channel.js";
import type { Clock } from "../domain/ports.js";
import type { Db } from "../store/database.js";
import { findAttempt, markFinished, markSubmitted } from "../store/repositories/attempts.js";
import type { AttemptRow } from "../store/tables/attempts.js";
import { inTransaction } from "../store/transaction.js";
import { recordEvent } from "../service/events.js";
import { errorFields, type Logger } from "../telemetry/logger.js";
import { ProviderError, type Provider, type SubmitResult } from "./provider.js";
import { renderOutbound } from "./render.js";

export interface AttemptHandlerDeps {
  readonly db: Db;
  readonly clock: Clock;
  readonly protector: CodeProtector;
  readonly providers: ReadonlyMap<string, Provider>;
  readonly log: Logger;
  readonly onOutboxWritten: () => void;
  /** Time one provider call may take. */
  readonly submitTimeoutMs: number;
  /** The bus's delivery limit: on the last delivery a retryable failure fails the attempt instead of vanishing. */
  readonly maxDeliver: number;
}

/**
 * Sends one attempt: renders, submits to the attempt's provider, records the
 * outcome. Only a QUEUED attempt is sent, so a redelivered message whose
 * attempt was already submitted (or canceled) is acknowledged without a send.
 */
export function createAttemptHandler(deps: AttemptHandlerDeps): (message: BusMessage) => Promise<Settlement> {
  return async (message) => {
    const dispatch = decodeDispatch(message.data);
    const attempt = await findAttempt(deps.db, dispatch.attemptId);
    if (attempt === undefined || attempt.status !== "QUEUED") return { kind: "ack" };
    if (deps.clock.now() >= new Date(dispatch.expiresAt)) {
      await finish(deps, attempt, "EXPIRED", { code: "code_expired", reason: "the code expired before it could be sent" });
      return { kind: "ack" };
    }
    const provider = deps.providers.get(dispatch.provider);
    if (provider === undefined) {
      await finish(deps, attempt, "FAILED", { code: "no_provider", reason: `provider ${dispatch.provider} is not configured on this worker` });
      return { kind: "term" };
    }
    let result: SubmitResult;
    try {
      result = await submit(deps, provider, dispatch);
    } catch (error) {
      const retryable = !(error instanceof ProviderError) || error.retryable;
      deps.log.warn("provider submit failed", { attemptId: attempt.id, provider: provider.name, retryable, ...errorFields(error) });
      if (!retryable) {
        await finish(deps, attempt, "REJECTED", { code: (error as ProviderError).code, reason: (error as Error).message });
        return { kind: "ack" };
      }
      if (message.deliveryCount < deps.maxDeliver) return { kind: "nak", delayMs: redeliveryDelayMs(message.deliveryCount) };
      await finish(deps, attempt, "FAILED", { code: "retries_exhausted", reason: `${message.deliveryCount} tries failed: ${(error as Error).message}` });
      return { kind: "term" };
    }
    await recordSubmitted(deps, attempt, result);
    return { kind: "ack" };
  };
}

async function submit(deps: AttemptHandlerDeps, provider: Provider, dispatch: DispatchMessage): Promise<SubmitResult> {
  const code = deps.protector.unseal(dispatch.verificationId, dispatch.sealedCode);
  return provider.submit(renderOutbound(dispatch, code), AbortSignal.timeout(deps.submitTimeoutMs));
}

async function recordSubmitted(deps: AttemptHandlerDeps, attempt: AttemptRow, result: SubmitResult): Promise<void> {
  await inTransaction(deps.db, async (uow) => {
    const now = deps.clock.now();
    const submitted = await markSubmitted(uow.trx, attempt.id, result.providerMessageId, now);
    if (submitted === undefined) return;
    const common = {
      verificationId: attempt.verification_id,
      attemptId: attempt.id,
      channel: attempt.channel as Channel,
      routeId: attempt.route_id,
      providerMessageId: result.providerMessageId,
      traceId: attempt.trace_id,
      occurredAt: now,
    };
    await recordEvent(uow, { ...common, kind: "ATTEMPT_SUBMITTED", status: "SUBMITTED", currency: attempt.currency, priceMicros: attempt.price_micros }, deps.onOutboxWritten);
    if (result.delivered) {
      await markFinished(uow.trx, attempt.id, "DELIVERED", now);
      await recordEvent(uow, { ...common, kind: "ATTEMPT_DELIVERED", status: "DELIVERED", latencyMs: 0 }, deps.onOutboxWritten);
    }
  });
}

async function finish(
  deps: AttemptHandlerDeps,
  attempt: AttemptRow,
  status: "FAILED" | "EXPIRED" | "REJECTED",
  error: { code: string; reason: string },
): Promise<void> {
  await inTransaction(deps.db, async (uow) => {
    const now = deps.clock.now();
    if ((await markFinished(uow.trx, attempt.id, status, now, error)) === undefined) return;
    await recordEvent(
      uow,
      {
        verificationId: attempt.verification_id,
        attemptId: attempt.id,
        channel: attempt.channel as Channel,
        routeId: attempt.route_id,
        kind: "ATTEMPT_FAILED",
        status,
        providerErrorCode: error.code,
        providerErrorReason: error.reason,
        traceId: attempt.trace_id,
        occurredAt: now,
      },
      deps.onOutboxWritten,
    );
  });
}
