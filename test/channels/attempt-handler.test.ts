import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Settlement } from "../../src/bus/bus.js";
import { createAttemptHandler } from "../../src/channels/attempt-handler.js";
import { ProviderError, type OutboundMessage, type Provider } from "../../src/channels/provider.js";
import { SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import { MessageCatalogue } from "../../src/domain/messages/catalogue.js";
import { getVerification } from "../../src/service/end-verification.js";
import { sendOtp } from "../../src/service/send-otp.js";
import type { Db } from "../../src/store/database.js";
import { silentLogger } from "../../src/telemetry/logger.js";
import { BACKENDS, dumpAllText } from "../harness/databases.js";
import { newTrace, sendCommand, serviceDeps } from "../harness/service-fixture.js";

const caller = { id: "checkout" };
const TIMEOUT_MS = 5_000;

type Step = "ok" | "retry" | "unreachable" | "timeout" | "reject";

/**
 * A provider that answers from a script: "ok"; "retry" (a 503: not sent);
 * "unreachable" (connection refused: not sent); "timeout" (no answer: it may
 * have been sent); "reject" (permanent).
 */
class ScriptedProvider implements Provider {
  readonly name = "sandbox";
  readonly timeoutMs = TIMEOUT_MS;
  readonly calls: OutboundMessage[] = [];
  constructor(
    private readonly script: Step[],
    readonly idempotent = true,
  ) {}
  async submit(message: OutboundMessage) {
    this.calls.push(message);
    const next = this.script.shift() ?? "ok";
    if (next === "retry") throw new ProviderError("provider answered 503", true, "http_503");
    if (next === "unreachable") throw new ProviderError("cannot reach provider (ECONNREFUSED)", true, "unreachable");
    if (next === "timeout") throw new ProviderError("provider did not answer in time", true, "timeout", true);
    if (next === "reject") throw new ProviderError("number blocked", false, "blocked");
    return { providerMessageId: `p-${message.attemptId}`, delivered: false };
  }
}

describe("channel worker: one attempt", () => {
  const backend = BACKENDS.find((b) => b.name === "pglite")!;
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  async function queued(command = sendCommand(), messages?: MessageCatalogue) {
    const deps = serviceDeps(db);
    const sent = await sendOtp(deps, caller, command, newTrace());
    const row = await db.selectFrom("outbox").select("payload").where("msg_id", "=", sent.firstAttempt.id).executeTakeFirstOrThrow();
    const data = Buffer.from(row.payload, "base64");
    const handle = (provider: Provider, deliveryCount: number): Promise<Settlement> =>
      createAttemptHandler({
        db,
        clock: deps.clock,
        protector: deps.protector,
        providers: new Map([["sandbox", provider]]),
        routes: new Map(SANDBOX_ROUTES.map((r) => [r.id, r])),
        ...(messages ? { messages } : {}),
        log: silentLogger,
        onOutboxWritten: () => {},
        maxDeliver: 3,
      })({ subject: "otp.dispatch.sms", data, headers: {}, deliveryCount });
    const attempt = async () => (await getVerification(deps, caller, sent.verification.id)).attempts[0]!;
    const events = async () => (await getVerification(deps, caller, sent.verification.id)).events;
    return { handle, attempt, events, clock: deps.clock };
  }

  it("submits once, records the provider id, and acknowledges a redelivery without sending again", async () => {
    const { handle, attempt } = await queued();
    const provider = new ScriptedProvider(["ok", "ok"]);
    expect(await handle(provider, 1)).toEqual({ kind: "ack" });
    expect(await handle(provider, 2)).toEqual({ kind: "ack" });
    expect(provider.calls).toHaveLength(1);
    expect(provider.calls[0]!.text).toMatch(/^\d{6} is your Acme verification code\.$/);
    expect(provider.calls[0]!.providerRoute).toBe("sandbox-sms");
    expect(await attempt()).toMatchObject({ status: "SUBMITTED", providerMessageId: `p-${provider.calls[0]!.attemptId}` });
  });

  it("renders in the request's language, and with the caller's own texts over the shipped ones", async () => {
    const dutch = new ScriptedProvider(["ok"]);
    await (await queued(sendCommand({ render: { brand: "Acme", locale: "nl-BE" } }))).handle(dutch, 1);
    expect(dutch.calls[0]!.text).toMatch(/^\d{6} is je verificatiecode voor Acme\.$/);
    const own = new MessageCatalogue(new Map(), new Map([["checkout", new Map([["nl", { sms: "Code {code}[ van {brand}]" }]])]]));
    const overridden = new ScriptedProvider(["ok"]);
    await (await queued(sendCommand({ render: { brand: "Acme", locale: "nl-BE" } }), own)).handle(overridden, 1);
    expect(overridden.calls[0]!.text).toMatch(/^Code \d{6} van Acme$/);
    // Another language of the same caller keeps the shipped texts.
    const french = new ScriptedProvider(["ok"]);
    await (await queued(sendCommand({ render: { locale: "fr" } }), own)).handle(french, 1);
    expect(french.calls[0]!.text).toMatch(/^\d{6} est votre code de vérification\.$/);
  });

  it("retries a failure that certainly did not send at once, then fails the attempt on the last delivery instead of dropping it", async () => {
    const { handle, attempt, events } = await queued();
    const provider = new ScriptedProvider(["retry", "unreachable", "retry"], false);
    expect((await handle(provider, 1)).kind).toBe("nak");
    expect((await attempt()).status).toBe("QUEUED");
    // Not sent for certain, so even a provider without idempotency is called again right away.
    expect((await handle(provider, 2)).kind).toBe("nak");
    expect(await handle(provider, 3)).toEqual({ kind: "term" });
    expect(provider.calls).toHaveLength(3);
    expect(await attempt()).toMatchObject({ status: "FAILED", providerErrorCode: "retries_exhausted" });
    expect((await events()).at(-1)).toMatchObject({ kind: "ATTEMPT_FAILED", status: "FAILED" });
  });

  it("fails the attempt on the last delivery when the worker itself keeps failing, instead of letting it vanish", async () => {
    const { handle, attempt, events } = await queued();
    // A bug before the provider call (here: reading the provider's timeout throws).
    const crashing: Provider = {
      name: "sandbox",
      idempotent: true,
      get timeoutMs(): number {
        throw new TypeError("bug before the call");
      },
      submit: () => Promise.reject(new Error("never called")),
    };
    expect((await handle(crashing, 1)).kind).toBe("nak");
    expect((await attempt()).status).toBe("QUEUED");
    expect(await handle(crashing, 3)).toEqual({ kind: "term" });
    expect(await attempt()).toMatchObject({ status: "FAILED", providerErrorCode: "worker_error" });
    expect((await events()).at(-1)).toMatchObject({ kind: "ATTEMPT_FAILED", providerErrorCode: "worker_error" });
  });

  it("rejects the attempt at once on a permanent failure", async () => {
    const { handle, attempt } = await queued();
    expect(await handle(new ScriptedProvider(["reject"]), 1)).toEqual({ kind: "ack" });
    expect(await attempt()).toMatchObject({ status: "REJECTED", providerErrorCode: "blocked", providerErrorReason: "number blocked" });
  });

  it("repeats a call that may have been sent only to a provider that de-duplicates by attempt id, once the first call is surely over", async () => {
    const { handle, attempt, clock } = await queued();
    const provider = new ScriptedProvider(["timeout", "ok"], true);
    expect((await handle(provider, 1)).kind).toBe("nak");
    // Redelivered before the first call's timeout has surely passed: another worker may still be in it.
    const early = await handle(provider, 2);
    expect(early.kind).toBe("nak");
    expect(provider.calls).toHaveLength(1);
    clock.advance(TIMEOUT_MS + 1_000);
    expect(await handle(provider, 2)).toEqual({ kind: "ack" });
    expect(provider.calls.map((c) => c.attemptId)).toEqual([provider.calls[0]!.attemptId, provider.calls[0]!.attemptId]);
    expect((await attempt()).status).toBe("SUBMITTED");
  });

  it("fails the attempt as outcome_unknown instead of calling a provider without idempotency a second time", async () => {
    const { handle, attempt, events, clock } = await queued();
    const provider = new ScriptedProvider(["timeout", "ok"], false);
    expect((await handle(provider, 1)).kind).toBe("nak");
    clock.advance(TIMEOUT_MS + 1_000);
    expect(await handle(provider, 2)).toEqual({ kind: "ack" });
    expect(provider.calls).toHaveLength(1);
    expect(await attempt()).toMatchObject({ status: "FAILED", providerErrorCode: "outcome_unknown" });
    expect((await events()).at(-1)).toMatchObject({ kind: "ATTEMPT_FAILED", providerErrorCode: "outcome_unknown" });
  });

  it("keeps no code or address from a provider's error that echoes the request: not in the store, the events or the bus", async () => {
    const { handle, attempt, events } = await queued();
    const sent: OutboundMessage[] = [];
    const echoing: Provider = {
      name: "sandbox",
      idempotent: true,
      timeoutMs: TIMEOUT_MS,
      submit: async (message) => {
        sent.push(message);
        throw new ProviderError(`provider answered 400: {"numbers":["${message.to}"],"message":"${message.text}"}`, false, "http_400");
      },
    };
    expect(await handle(echoing, 1)).toEqual({ kind: "ack" });
    const code = /^(\d{6}) /.exec(sent[0]!.text)![1]!;
    expect((await attempt()).status).toBe("REJECTED");
    const reason = (await events()).find((e) => e.kind === "ATTEMPT_FAILED")?.providerErrorReason;
    expect(reason).toContain("provider answered 400");
    // The address is stored where sending needs it, never in what the provider said.
    const stored = await db.selectFrom("attempts").select("provider_error_reason").where("id", "=", sent[0]!.attemptId).executeTakeFirstOrThrow();
    for (const text of [reason!, stored.provider_error_reason!]) expect(text).not.toContain(sent[0]!.to.slice(1));
    expect(await dumpAllText(db)).not.toContain(code);
  });
});
