import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyReceipt, recordSubmitted } from "../../src/service/attempt-lifecycle.js";
import { sendOtp } from "../../src/service/send-otp.js";
import type { Db } from "../../src/store/database.js";
import { listDeliveryEvents } from "../../src/store/repositories/delivery-events.js";
import { readVerificationRecord } from "../../src/store/repositories/verifications.js";
import { BACKENDS } from "../harness/databases.js";
import { newTrace, sendCommand, serviceDeps } from "../harness/service-fixture.js";

describe.each(BACKENDS)("a verification's record in one statement on $name", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it("is what its tables hold, read one by one: times as Dates, numbers as numbers, nulls as nulls", async () => {
    const deps = serviceDeps(db);
    const caller = { id: "record-reader" };
    const sent = await sendOtp(deps, caller, sendCommand(), newTrace());
    const queued = await db.selectFrom("attempts").selectAll().where("id", "=", sent.firstAttempt.id).executeTakeFirstOrThrow();
    // Every time column of the attempt set: its call started, submitted with a poll due, then delivered.
    await db.updateTable("attempts").set({ submit_started_at: deps.clock.now() }).where("id", "=", queued.id).execute();
    deps.clock.advance(1_234);
    await recordSubmitted(deps, queued, { providerMessageId: `rec-${backend.name}`, delivered: false, firstPollAt: new Date(deps.clock.now().getTime() + 30_000) });
    deps.clock.advance(2_000);
    await applyReceipt(deps, { provider: queued.provider, providerMessageId: `rec-${backend.name}`, status: "DELIVERED", occurredAt: deps.clock.now() });

    const record = await readVerificationRecord(db, sent.verification.id, caller.id);
    expect(record?.verification).toEqual(await db.selectFrom("verifications").selectAll().where("id", "=", sent.verification.id).executeTakeFirstOrThrow());
    expect(record?.attempts).toEqual(await db.selectFrom("attempts").selectAll().where("verification_id", "=", sent.verification.id).orderBy("step_index").execute());
    expect(record?.events).toEqual(await listDeliveryEvents(db, sent.verification.id));
    expect(record?.attempts[0]?.completed_at).toBeInstanceOf(Date);
    expect(record?.events.map((e) => e.kind)).toEqual(["VERIFICATION_CREATED", "ATTEMPT_QUEUED", "ATTEMPT_SUBMITTED", "ATTEMPT_DELIVERED"]);
  });

  it("is undefined for another caller's verification or an unknown id", async () => {
    const deps = serviceDeps(db);
    const sent = await sendOtp(deps, { id: "record-owner" }, sendCommand(), newTrace());
    expect(await readVerificationRecord(db, sent.verification.id, "record-stranger")).toBeUndefined();
    expect(await readVerificationRecord(db, "vrf_unknown", "record-owner")).toBeUndefined();
  });
});
