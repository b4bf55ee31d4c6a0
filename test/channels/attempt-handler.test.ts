import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Settlement } from "../../src/bus/bus.js";
import { createAttemptHandler } from "../../src/channels/attempt-handler.js";
import { ProviderError, type OutboundMessage, type Provider } from "../../src/channels/provider.js";
import { getVerification } from "../../src/service/end-verification.js";
import { sendOtp } from "../../src/service/send-otp.js";
import type { Db } from "../../src/store/database.js";
import { silentLogger } from "../../src/telemetry/logger.js";
import { BACKENDS } from "../harness/databases.js";
import { newTrace, sendCommand, serviceDeps } from "../harness/service-fixture.js";

const caller = { id: "checkout" };

/** A provider that answers from a script: "ok", "retry" (retryable error) or "reject" (permanent). */
class ScriptedProvider implements Provider {
  readonly name = "sandbox";
  readonly submitted: OutboundMessage[] = [];
  constructor(private readonly script: Array<"ok" | "retry" | "reject">) {}
  async submit(message: OutboundMessage) {
    const next = this.script.shift() ?? "ok";
    if (next === "retry") throw new ProviderError("gateway timeout", true, "504");
    if (next === "reject") throw new ProviderError("number blocked", false, "blocked");
    this.submitted.push(message);
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

  async function queued() {
    const deps = serviceDeps(db);
    const sent = await sendOtp(deps, caller, sendCommand(), newTrace());
    const row = await db.selectFrom("outbox").select("payload").where("msg_id", "=", sent.firstAttempt.id).executeTakeFirstOrThrow();
    const data = Buffer.from(row.payload, "base64");
    const handle = (provider: Provider, deliveryCount: number): Promise<Settlement> =>
      createAttemptHandler({
        db,
        clock: deps.clock,
        protector: deps.protector,
        providers: new Map([["sandbox", provider]]),
        log: silentLogger,
        onOutboxWritten: () => {},
        submitTimeoutMs: 1_000,
        maxDeliver: 3,
      })({ subject: "otp.dispatch.sms", data, headers: {}, deliveryCount });
    const attempt = async () => (await getVerification(deps, caller, sent.verification.id)).attempts[0]!;
    const events = async () => (await getVerification(deps, caller, sent.verification.id)).events;
    return { handle, attempt, events };
  }

  it("submits once, records the provider id, and acknowledges a redelivery without sending again", async () => {
    const { handle, attempt } = await queued();
    const provider = new ScriptedProvider(["ok", "ok"]);
    expect(await handle(provider, 1)).toEqual({ kind: "ack" });
    expect(await handle(provider, 2)).toEqual({ kind: "ack" });
    expect(provider.submitted).toHaveLength(1);
    expect(provider.submitted[0]!.text).toMatch(/^\d{6} is your Acme verification code\.$/);
    expect(await attempt()).toMatchObject({ status: "SUBMITTED", providerMessageId: `p-${provider.submitted[0]!.attemptId}` });
  });

  it("retries a retryable failure, then fails the attempt on the last delivery instead of dropping it", async () => {
    const { handle, attempt, events } = await queued();
    const provider = new ScriptedProvider(["retry", "retry", "retry"]);
    expect((await handle(provider, 1)).kind).toBe("nak");
    expect((await attempt()).status).toBe("QUEUED");
    expect((await handle(provider, 2)).kind).toBe("nak");
    expect(await handle(provider, 3)).toEqual({ kind: "term" });
    expect(await attempt()).toMatchObject({ status: "FAILED", providerErrorCode: "retries_exhausted" });
    expect((await events()).at(-1)).toMatchObject({ kind: "ATTEMPT_FAILED", status: "FAILED" });
  });

  it("rejects the attempt at once on a permanent failure", async () => {
    const { handle, attempt } = await queued();
    expect(await handle(new ScriptedProvider(["reject"]), 1)).toEqual({ kind: "ack" });
    expect(await attempt()).toMatchObject({ status: "REJECTED", providerErrorCode: "blocked", providerErrorReason: "number blocked" });
  });
});
