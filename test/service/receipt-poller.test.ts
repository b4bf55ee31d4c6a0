import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpRouteProvider } from "../../src/channels/providers/http-route/http-route-provider.js";
import { httpRoutePoller } from "../../src/channels/providers/http-route/http-route-receipts.js";
import { Secret } from "../../src/config/secret.js";
import { pollDueReceipts } from "../../src/receipts/receipt-poller.js";
import { recordSubmitted } from "../../src/service/attempt-lifecycle.js";
import { sendOtp } from "../../src/service/send-otp.js";
import type { Db } from "../../src/store/database.js";
import { findAttempt } from "../../src/store/repositories/attempts.js";
import { silentLogger } from "../../src/telemetry/logger.js";
import { BACKENDS } from "../harness/databases.js";
import { newTrace, sendCommand, serviceDeps, uniquePhone } from "../harness/service-fixture.js";
import { HttpRoutePeer } from "../peers/http-route-peer.js";

const caller = { id: "checkout" };
const INTERVAL_MS = 30_000;

describe.each(BACKENDS)("receipt polling on $name", (backend) => {
  let db: Db;
  let peer: HttpRoutePeer;
  beforeAll(async () => {
    db = await backend.open();
    peer = await HttpRoutePeer.start({ apiKey: "k", webhookSecret: "s" });
  });
  afterAll(async () => {
    await db?.destroy();
    await peer?.stop();
  });

  it("asks the provider about submitted attempts when due, one interval apart, and applies the final status", async () => {
    const settings = {
      name: "sandbox",
      type: "http-route" as const,
      baseUrl: peer.baseUrl,
      apiKey: new Secret("k"),
      receipts: "poll" as const,
      pollIntervalMs: INTERVAL_MS,
      idempotencyKey: true,
      timeoutMs: 2_000,
    };
    const pollers = new Map([["sandbox", httpRoutePoller(settings)!]]);
    const deps = serviceDeps(db);
    const phone = uniquePhone();
    peer.onReceipt(phone, { status: "never" });
    const sent = await sendOtp(deps, caller, sendCommand({ destination: { phone } }), newTrace());
    const attempt = (await findAttempt(db, sent.firstAttempt.id))!;
    // What the worker does: submit to the provider, record the id with the first poll time.
    const { providerMessageId } = await new HttpRouteProvider(settings).submit(
      { attemptId: attempt.id, verificationId: attempt.verification_id, channel: "sms", providerRoute: "1", to: phone, sender: "ACME", text: "x" },
      AbortSignal.timeout(2_000),
    );
    await recordSubmitted(deps, attempt, { providerMessageId, delivered: false, firstPollAt: new Date(deps.clock.now().getTime() + INTERVAL_MS) });
    const outcome = { db, clock: deps.clock, onOutboxWritten: () => {} };

    expect(await pollDueReceipts(outcome, pollers, silentLogger, 10)).toBe(0);
    deps.clock.advance(INTERVAL_MS);
    expect(await pollDueReceipts(outcome, pollers, silentLogger, 10)).toBe(1);
    expect((await findAttempt(db, attempt.id))!.status).toBe("SUBMITTED");
    // Polled once per interval, not once per loop tick.
    expect(await pollDueReceipts(outcome, pollers, silentLogger, 10)).toBe(0);

    await peer.report(providerMessageId, { status: "EXPIRED", push: false });
    deps.clock.advance(INTERVAL_MS);
    expect(await pollDueReceipts(outcome, pollers, silentLogger, 10)).toBe(1);
    expect(await findAttempt(db, attempt.id)).toMatchObject({ status: "EXPIRED", provider_error_code: "expired" });
    deps.clock.advance(INTERVAL_MS);
    expect(await pollDueReceipts(outcome, pollers, silentLogger, 10)).toBe(0);
  });
});
