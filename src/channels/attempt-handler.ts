import { setTimeout as sleep } from "node:timers/promises";
import { context } from "@opentelemetry/api";
import type { BusMessage, Settlement } from "../bus/bus.js";
import { redeliveryDelayMs } from "../bus/bus.js";
import { decodeDispatch } from "../bus/dispatch-message.js";
import type { CodeProtector } from "../domain/code-protector.js";
import type { Route } from "../domain/route.js";
import { claimSend, clearSendIntent, recordAttemptFailure, recordSubmitted, type OutcomeDeps } from "../service/attempt-lifecycle.js";
import { findAttempt } from "../store/repositories/attempts.js";
import type { AttemptRow } from "../store/tables/attempts.js";
import { isDatabaseUnavailable } from "../store/unavailable.js";
import { UnavailableError } from "../domain/errors.js";
import { SHIPPED_CATALOGUE, type MessageCatalogue } from "../domain/messages/catalogue.js";
import { errorFields, type Logger } from "../telemetry/logger.js";
import { otpMetrics } from "../telemetry/metrics.js";
import { annotate, ATTR, contextOf, inSpan, ownTraceparent, SpanKind } from "../telemetry/spans.js";
import { ProviderError, type Provider, type SubmitResult } from "./provider.js";
import { renderOutbound } from "./render.js";
import { withTimeLimit } from "../util/time-limit.js";

export interface AttemptHandlerDeps extends OutcomeDeps {
  readonly protector: CodeProtector;
  /** Configured providers by name. */
  readonly providers: ReadonlyMap<string, Provider>;
  /** Configured routes by id: the provider's name for each. */
  readonly routes: ReadonlyMap<string, Route>;
  /** Message texts with the operator's replacements; the shipped ones when unset. */
  readonly messages?: MessageCatalogue;
  readonly log: Logger;
  /** The bus's delivery limit: on the last delivery a retryable failure fails the attempt instead of vanishing. */
  readonly maxDeliver: number;
}

/**
 * Sends one attempt: renders, submits to the attempt's provider, records the
 * outcome, then settles the message.
 *
 * Never twice: only a QUEUED attempt that its verification still wants is
 * sent (see attempt-lifecycle.ts), and the intent to call the provider is
 * committed before the call. A redelivery that finds an earlier
 * intent (the worker died mid-call, or the call timed out) sends again only to
 * a provider that de-duplicates by attempt id; otherwise the attempt fails as
 * `outcome_unknown` rather than risk a second message.
 */
export function createAttemptHandler(deps: AttemptHandlerDeps): (message: BusMessage) => Promise<Settlement> {
  const handle = sendAttempt(deps);
  return async (message) => {
    try {
      // The worker's step of the verification's trace: a child of the relay's span through the message headers.
      return await inSpan("otp.dispatch", { kind: SpanKind.CONSUMER, parent: contextOf(message.headers.traceparent) }, () => handle(message));
    } catch (error) {
      // Not a provider failure (those are settled inside): a bug or the database. Redelivered while
      // deliveries remain; on the last one the attempt is failed, if the store lets us, rather than vanish.
      deps.log.error("attempt handler failed", { deliveryCount: message.deliveryCount, ...errorFields(error) });
      if (message.deliveryCount < deps.maxDeliver) return { kind: "nak", delayMs: redeliveryDelayMs(message.deliveryCount) };
      const attempt = await findAttempt(deps.db, decodeDispatch(message.data).attemptId);
      if (attempt !== undefined) {
        await recordAttemptFailure(deps, attempt, "FAILED", { code: "worker_error", reason: `${message.deliveryCount} tries failed in the worker` });
      }
      return { kind: "term" };
    }
  };
}

function sendAttempt(deps: AttemptHandlerDeps): (message: BusMessage) => Promise<Settlement> {
  return async (message) => {
    const dispatch = decodeDispatch(message.data);
    annotate({
      [ATTR.verificationId]: dispatch.verificationId,
      [ATTR.attemptId]: dispatch.attemptId,
      [ATTR.channel]: dispatch.channel,
      [ATTR.routeId]: dispatch.routeId,
      [ATTR.provider]: dispatch.provider,
    });
    const provider = deps.providers.get(dispatch.provider);
    const route = deps.routes.get(dispatch.routeId);
    const expired = deps.clock.now() >= new Date(dispatch.expiresAt);
    if (expired || provider === undefined || route === undefined) {
      // Off the usual way: the attempt as stored says whether anything is left to record.
      const attempt = await stored(deps, () => findAttempt(deps.db, dispatch.attemptId));
      if (attempt === undefined || attempt.status !== "QUEUED") return { kind: "ack" };
      if (expired) {
        await stored(deps, () => recordAttemptFailure(deps, attempt, "EXPIRED", { code: "code_expired", reason: "the code expired before it could be sent" }));
        return { kind: "ack" };
      }
      const missing = provider === undefined ? `provider ${dispatch.provider}` : `route ${dispatch.routeId}`;
      await stored(deps, () => recordAttemptFailure(deps, attempt, "FAILED", { code: "not_configured", reason: `${missing} is not configured on this worker` }));
      return { kind: "term" };
    }

    // The claim reads the attempt as it records the call's start: on the usual way nothing is read before it.
    const decision = await stored(deps, () => claimSend(deps, dispatch.verificationId, dispatch.attemptId, provider));
    if (decision.kind === "done" || decision.kind === "superseded") return { kind: "ack" };
    if (decision.kind === "wait") return { kind: "nak", delayMs: decision.delayMs };
    if (decision.kind === "give-up") {
      const attempt = await stored(deps, () => findAttempt(deps.db, dispatch.attemptId));
      if (attempt !== undefined) {
        await stored(deps, () =>
          recordAttemptFailure(deps, attempt, "FAILED", {
            code: "outcome_unknown",
            reason: `an earlier call to ${provider.name} may have sent it; not sending twice`,
          }),
        );
      }
      return { kind: "ack" };
    }
    const { attempt } = decision;
    if (decision.repeat) {
      deps.log.info("repeating a send that may have reached the provider; it de-duplicates by attempt id", { attemptId: attempt.id, provider: provider.name });
    }

    let result: SubmitResult;
    try {
      const code = deps.protector.unseal(dispatch.verificationId, dispatch.sealedCode);
      const parent = context.active();
      result = await inSpan("provider.submit", { kind: SpanKind.CLIENT, attributes: { [ATTR.provider]: provider.name, [ATTR.routeId]: route.id } }, async (span) => {
        // The provider sees this span as its parent (the HTTP providers send it as `traceparent`).
        const traceparent = ownTraceparent(span, parent) ?? message.headers.traceparent ?? attempt.traceparent;
        const texts = (deps.messages ?? SHIPPED_CATALOGUE).texts(dispatch.render.locale, dispatch.callerId);
        const outbound = renderOutbound(dispatch, code, { providerRoute: route.providerRoute, traceparent }, texts, deps.clock.now());
        const submitted = await withTimeLimit(provider.timeoutMs, (signal) => provider.submit(outbound, signal));
        span.setAttribute(ATTR.providerMessageId, submitted.providerMessageId);
        return submitted;
      });
    } catch (error) {
      return settleFailure(deps, attempt, provider, message, error);
    }
    const now = deps.clock.now();
    const firstPollAt = provider.firstPollAfterMs === undefined ? null : new Date(now.getTime() + provider.firstPollAfterMs);
    // The message is out: its provider id must be recorded, however long the database is away.
    await stored(deps, () => recordSubmitted(deps, attempt, { providerMessageId: result.providerMessageId, delivered: result.delivered, firstPollAt }));
    otpMetrics.submitted({ channel: attempt.channel, route: attempt.route_id }, "accepted");
    otpMetrics.charged(attempt.currency, attempt.price_micros);
    return { kind: "ack" };
  };
}

async function settleFailure(deps: AttemptHandlerDeps, attempt: AttemptRow, provider: Provider, message: BusMessage, error: unknown): Promise<Settlement> {
  const classified = error instanceof ProviderError ? error : new ProviderError((error as Error).message, true, "internal", true);
  deps.log.warn("provider submit failed", {
    attemptId: attempt.id,
    provider: provider.name,
    retryable: classified.retryable,
    ambiguous: classified.ambiguous,
    ...errorFields(classified),
  });
  otpMetrics.submitted({ channel: attempt.channel, route: attempt.route_id }, classified.retryable ? "failed" : "rejected");
  otpMetrics.providerError(provider.name, classified.code);
  if (!classified.ambiguous) await stored(deps, () => clearSendIntent(deps, attempt.id));
  if (!classified.retryable) {
    await stored(deps, () => recordAttemptFailure(deps, attempt, "REJECTED", { code: classified.code, reason: classified.message }));
    return { kind: "ack" };
  }
  if (message.deliveryCount < deps.maxDeliver) return { kind: "nak", delayMs: redeliveryDelayMs(message.deliveryCount) };
  await stored(deps, () => recordAttemptFailure(deps, attempt, "FAILED", { code: "retries_exhausted", reason: `${message.deliveryCount} tries failed: ${classified.message}` }));
  return { kind: "term" };
}


/** Longest a handler holds its message waiting for the database to come back (a code lives at most 10 minutes). */
const STORE_PATIENCE_MS = 10 * 60_000;

/**
 * Runs a store operation again while the database is unavailable, with
 * growing pauses (up to 5 s), for up to STORE_PATIENCE_MS. The message stays
 * with this handler meanwhile (the bus hears it is being worked on), so an
 * outage neither uses up its deliveries nor loses what the provider answered.
 */
async function stored<T>(deps: AttemptHandlerDeps, operation: () => Promise<T>): Promise<T> {
  const giveUpAt = Date.now() + STORE_PATIENCE_MS;
  for (let tries = 1; ; tries++) {
    try {
      return await operation();
    } catch (error) {
      if (!(isDatabaseUnavailable(error) || error instanceof UnavailableError) || Date.now() >= giveUpAt) throw error;
      if (tries === 1) deps.log.warn("the database is unavailable; holding the attempt until it answers", errorFields(error));
      await sleep(Math.min(5_000, 100 * 2 ** tries));
    }
  }
}
