import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeliveryReceipt } from "../../src/domain/receipt.js";
import { dropUnmatchedReceipts } from "../../src/receipts/parked-sweep.js";
import { applyReceipt, recordAttemptFailure, recordSubmitted } from "../../src/service/attempt-lifecycle.js";
import { getVerification } from "../../src/service/end-verification.js";
import { sendOtp } from "../../src/service/send-otp.js";
import type { Db } from "../../src/store/database.js";
import { findAttempt } from "../../src/store/repositories/attempts.js";
import { silentLogger } from "../../src/telemetry/logger.js";
import { BACKENDS } from "../harness/databases.js";
import { newTrace, sendCommand, serviceDeps } from "../harness/service-fixture.js";

const caller = { id: "checkout" };
let ids = 0;

describe.each(BACKENDS)("delivery receipts on $name", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  async function queuedAttempt() {
    const deps = serviceDeps(db);
    const sent = await sendOtp(deps, caller, sendCommand(), newTrace());
    const attempt = (await findAttempt(db, sent.firstAttempt.id))!;
    const providerMessageId = `pm-${++ids}-${backend.name}`;
    const receipt = (status: DeliveryReceipt["status"], extra: Partial<DeliveryReceipt> = {}): DeliveryReceipt => ({
      provider: "sandbox",
      providerMessageId,
      status,
      occurredAt: deps.clock.now(),
      ...extra,
    });
    const submit = () => recordSubmitted(deps, attempt, { providerMessageId, delivered: false, firstPollAt: null });
    const events = async () => (await getVerification(deps, caller, sent.verification.id)).events;
    const timeline = async () => (await events()).map((e) => [e.kind, e.status]);
    const status = async () => (await findAttempt(db, attempt.id))!.status;
    return { deps, attempt, receipt, submit, events, timeline, status };
  }

  it("moves an attempt forward only: DELIVERED once, a late SUBMITTED or a repeated or contrary receipt changes nothing", async () => {
    const { deps, receipt, submit, timeline, status } = await queuedAttempt();
    await submit();
    expect(await applyReceipt(deps, receipt("SUBMITTED"))).toBe("unchanged");
    deps.clock.advance(2_500);
    expect(await applyReceipt(deps, receipt("DELIVERED", { occurredAt: deps.clock.now() }))).toBe("applied");
    expect(await applyReceipt(deps, receipt("DELIVERED"))).toBe("unchanged");
    expect(await applyReceipt(deps, receipt("SUBMITTED"))).toBe("unchanged");
    expect(await applyReceipt(deps, receipt("UNDELIVERED"))).toBe("unchanged");
    expect(await status()).toBe("DELIVERED");
    expect(await timeline()).toEqual([
      ["VERIFICATION_CREATED", undefined],
      ["ATTEMPT_QUEUED", "QUEUED"],
      ["ATTEMPT_SUBMITTED", "SUBMITTED"],
      ["ATTEMPT_DELIVERED", "DELIVERED"],
    ]);
  });

  it("records a failed receipt with its error code, and the delivery latency from submit to receipt", async () => {
    const failed = await queuedAttempt();
    await failed.submit();
    await applyReceipt(failed.deps, failed.receipt("UNDELIVERED", { errorCode: "27", errorReason: "absent subscriber" }));
    expect((await failed.events()).at(-1)).toMatchObject({ kind: "ATTEMPT_FAILED", status: "UNDELIVERED", providerErrorCode: "27", providerErrorReason: "absent subscriber" });

    const delivered = await queuedAttempt();
    await delivered.submit();
    const at = new Date(delivered.deps.clock.now().getTime() + 4_200);
    await applyReceipt(delivered.deps, delivered.receipt("DELIVERED", { occurredAt: at }));
    expect((await delivered.events()).at(-1)).toMatchObject({ kind: "ATTEMPT_DELIVERED", latencyMs: 4_200 });
  });

  it("parks a receipt that arrives before the provider id is recorded, and applies it when the id lands", async () => {
    const { deps, receipt, submit, timeline, status } = await queuedAttempt();
    expect(await applyReceipt(deps, receipt("DELIVERED"))).toBe("parked");
    expect(await applyReceipt(deps, receipt("DELIVERED"))).toBe("parked");
    expect(await status()).toBe("QUEUED");
    await submit();
    expect(await status()).toBe("DELIVERED");
    expect((await timeline()).slice(2)).toEqual([
      ["ATTEMPT_SUBMITTED", "SUBMITTED"],
      ["ATTEMPT_DELIVERED", "DELIVERED"],
    ]);
    expect(await db.selectFrom("parked_receipts").selectAll().where("provider_message_id", "=", receipt("SUBMITTED").providerMessageId).execute()).toEqual([]);
  });

  it("records nothing for a submission of an attempt that had already ended: no event, and its id's parked receipt stays parked", async () => {
    const { deps, attempt, receipt, submit, events, timeline, status } = await queuedAttempt();
    expect(await applyReceipt(deps, receipt("DELIVERED"))).toBe("parked");
    await recordAttemptFailure(deps, attempt, "FAILED", { code: "gave_up", reason: "no provider answered" });
    const before = await timeline();
    await submit();
    expect(await status()).toBe("FAILED");
    expect(await timeline()).toEqual(before);
    const verification = await db.selectFrom("verifications").select("event_seq").where("id", "=", (await events())[0]!.verificationId).executeTakeFirstOrThrow();
    expect(Number(verification.event_seq)).toBe((await events()).at(-1)!.sequence);
    expect(await db.selectFrom("parked_receipts").select("status").where("provider_message_id", "=", receipt("SUBMITTED").providerMessageId).execute()).toEqual([{ status: "DELIVERED" }]);
  });

  it("matches a receipt racing the worker's record of the provider id, whichever commits first", async () => {
    for (let round = 0; round < 10; round++) {
      const { deps, receipt, submit, status } = await queuedAttempt();
      await Promise.all([applyReceipt(deps, receipt("DELIVERED")), submit()]);
      expect(await status()).toBe("DELIVERED");
    }
  });

  it("drops receipts nobody claimed after the grace period, counting them", async () => {
    const { deps, receipt } = await queuedAttempt();
    await applyReceipt(deps, receipt("DELIVERED", { providerMessageId: `never-${backend.name}` }));
    expect(await dropUnmatchedReceipts(db, deps.clock, 60_000, silentLogger)).toBe(0);
    deps.clock.advance(61_000);
    expect(await dropUnmatchedReceipts(db, deps.clock, 60_000, silentLogger)).toBeGreaterThanOrEqual(1);
    expect(await db.selectFrom("parked_receipts").selectAll().where("provider_message_id", "=", `never-${backend.name}`).execute()).toEqual([]);
  });
});
