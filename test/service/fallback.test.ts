import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_POLICIES, SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import { ProviderError } from "../../src/channels/provider.js";
import type { Route } from "../../src/domain/route.js";
import { applyReceipt, recordAttemptFailure, recordSubmitted } from "../../src/service/attempt-lifecycle.js";
import type { Catalogue } from "../../src/service/deps.js";
import { cancelOtp, expireDue, getVerification } from "../../src/service/end-verification.js";
import { advanceDuePlans } from "../../src/service/fallback.js";
import { sendOtp } from "../../src/service/send-otp.js";
import { verifyOtp } from "../../src/service/verify-otp.js";
import type { Db } from "../../src/store/database.js";
import { findAttempt } from "../../src/store/repositories/attempts.js";
import { findBalance, openBalance } from "../../src/store/repositories/ledger.js";
import { BACKENDS } from "../harness/databases.js";
import { newTrace, pricedRoute, sendCommand, serviceDeps, uniquePhone } from "../harness/service-fixture.js";
import { attemptHandler, CountingProvider, dispatchMessage, GatedProvider } from "../harness/worker-fixture.js";

const priced = (channel: Route["channel"], micros: number): Route => pricedRoute(channel, micros, "priced");
/** SMS 0.072, email 0.001, voice 0.15, push free — all EUR, all sandbox. */
const PRICED: Catalogue = { routes: [priced("sms", 72_000), priced("email", 1_000), priced("voice", 150_000), priced("push", 0)], policies: DEFAULT_POLICIES };

let callers = 0;

describe.each(BACKENDS)("fallback plans on $name", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  async function started(options: { credit?: number; catalogue?: Catalogue; destination?: object } = {}) {
    const deps = serviceDeps(db, { ...(options.catalogue ? { catalogue: options.catalogue } : {}) });
    const caller = { id: `caller-${backend.name}-${++callers}` };
    if (options.credit !== undefined) await openBalance(db, caller.id, { currency: "EUR", micros: options.credit }, deps.clock.now());
    const destination = options.destination ?? { phone: uniquePhone(), email: `u${callers}@example.com`, pushToken: `tok-${callers}` };
    const sent = await sendOtp(deps, caller, sendCommand({ destination }), newTrace());
    const id = sent.verification.id;
    const details = () => getVerification(deps, caller, id);
    const kinds = async () => (await details()).events.map((e) => e.kind);
    const attempts = async () => (await details()).attempts;
    const tick = () => advanceDuePlans(deps, 10);
    /** The code of the newest attempt that may have gone out (each attempt carries its own). */
    const code = async (channel?: string) => {
      let query = db.selectFrom("attempts").select("sealed_code").where("verification_id", "=", id).where("status", "!=", "CANCELED");
      if (channel) query = query.where("channel", "=", channel);
      const row = await query.orderBy("step_index", "desc").executeTakeFirstOrThrow();
      return deps.protector.unseal(id, row.sealed_code!);
    };
    return { deps, caller, sent, id, details, kinds, attempts, tick, code };
  }

  it("SMS without a receipt → email after 15 s → voice after 30 s more, each with its reason; nothing fires early", async () => {
    const { deps, attempts, details, tick } = await started();
    await tick();
    deps.clock.advance(14_999);
    await tick();
    expect((await attempts()).map((a) => a.channel)).toEqual(["sms"]);
    deps.clock.advance(1);
    await tick();
    // The SMS never went out: superseded by the email, it is canceled, not sent late.
    expect((await attempts()).map((a) => [a.channel, a.status])).toEqual([["sms", "CANCELED"], ["email", "QUEUED"]]);
    deps.clock.advance(29_000);
    await tick();
    expect(await attempts()).toHaveLength(2);
    deps.clock.advance(1_000);
    await tick();
    expect((await attempts()).map((a) => [a.channel, a.status])).toEqual([["sms", "CANCELED"], ["email", "CANCELED"], ["voice", "QUEUED"]]);
    const fallbacks = (await details()).events.filter((e) => e.kind === "FALLBACK_TRIGGERED");
    expect(fallbacks.map((e) => [e.channel, e.reason])).toEqual([
      ["email", "sms not sent within 15 s; next: email"],
      ["voice", "email code not used within 30 s; next: voice"],
    ]);
  });

  it("escalates at once on a failed receipt, and not at all after a delivered one", async () => {
    const failed = await started();
    const sms = (await failed.attempts())[0]!;
    const row = (await findAttempt(db, sms.id))!;
    await recordSubmitted(failed.deps, row, { providerMessageId: `p-${sms.id}`, delivered: false, firstPollAt: null });
    await applyReceipt(failed.deps, { provider: "sandbox", providerMessageId: `p-${sms.id}`, status: "UNDELIVERED", errorCode: "27", occurredAt: failed.deps.clock.now() });
    await failed.tick();
    expect((await failed.attempts()).map((a) => a.channel)).toEqual(["sms", "email"]);
    expect((await failed.details()).events.find((e) => e.kind === "FALLBACK_TRIGGERED")?.reason).toBe("sms attempt undelivered (27); next: email");

    const delivered = await started();
    const first = (await findAttempt(db, (await delivered.attempts())[0]!.id))!;
    await recordSubmitted(delivered.deps, first, { providerMessageId: `p-${first.id}`, delivered: true, firstPollAt: null });
    delivered.deps.clock.advance(60_000);
    await delivered.tick();
    expect((await delivered.attempts()).map((a) => a.channel)).toEqual(["sms"]);
  });

  it("escalates at once when the worker gives up on an attempt (retries exhausted)", async () => {
    const { deps, attempts, tick } = await started();
    const row = (await findAttempt(db, (await attempts())[0]!.id))!;
    await recordAttemptFailure(deps, row, "FAILED", { code: "retries_exhausted", reason: "5 tries failed" });
    await tick();
    expect((await attempts()).map((a) => [a.channel, a.status])).toEqual([["sms", "FAILED"], ["email", "QUEUED"]]);
  });

  it("stops the plan on approval: queued attempts are canceled and no later step fires", async () => {
    const { deps, caller, id, attempts, tick, code, kinds } = await started();
    deps.clock.advance(15_000);
    await tick();
    expect(await attempts()).toHaveLength(2);
    expect((await verifyOtp(deps, caller, id, await code())).outcome).toBe("APPROVED");
    deps.clock.advance(120_000);
    await tick();
    expect((await attempts()).map((a) => a.status)).toEqual(["CANCELED", "CANCELED"]);
    expect((await kinds()).at(-1)).toBe("VERIFIED");
  });

  it("a plan that cannot be advanced is put aside and does not hold up the others", async () => {
    const broken = await started();
    const healthy = await started();
    healthy.deps.clock.advance(15_000);
    // A plan the scheduler cannot read, due first.
    await db.updateTable("verifications").set({ plan: "{}", next_step_at: new Date(0) }).where("id", "=", broken.id).execute();
    await advanceDuePlans(healthy.deps, 10);
    expect((await healthy.attempts()).map((a) => a.channel)).toEqual(["sms", "email"]);
    const row = await db.selectFrom("verifications").select("next_step_at").where("id", "=", broken.id).executeTakeFirstOrThrow();
    expect(row.next_step_at!.getTime()).toBe(healthy.deps.clock.now().getTime() + 5_000);
  });

  it("fires each step once when two schedulers race", async () => {
    const { deps, attempts } = await started();
    deps.clock.advance(15_000);
    await Promise.all([advanceDuePlans(deps, 10), advanceDuePlans(deps, 10), advanceDuePlans(deps, 10)]);
    expect((await attempts()).map((a) => a.channel)).toEqual(["sms", "email"]);
  });

  it("skips a step the balance cannot pay, saying so, and charges each attempt once", async () => {
    // SMS 0.072 + email 0.001 fit in 0.08; voice 0.15 does not; push is free.
    const { deps, caller, attempts, details, tick } = await started({ credit: 80_000, catalogue: PRICED });
    expect(await findBalance(db, caller.id)).toEqual({ currency: "EUR", micros: 8_000 });
    // Each step's message goes out (so it stays charged), and none is answered.
    const submit = async () => {
      const queued = (await attempts()).find((a) => a.status === "QUEUED")!;
      await recordSubmitted(deps, (await findAttempt(db, queued.id))!, { providerMessageId: `p-${queued.id}`, delivered: false, firstPollAt: null });
    };
    await submit();
    deps.clock.advance(15_000);
    await tick();
    await submit();
    deps.clock.advance(30_000);
    await tick();
    expect((await attempts()).map((a) => a.channel)).toEqual(["sms", "email", "push"]);
    expect((await details()).events.filter((e) => e.kind === "FALLBACK_TRIGGERED").at(-1)?.reason).toBe(
      "email code not used within 30 s; voice skipped: balance 0.007 EUR cannot pay the voice step (0.15 EUR); next: push",
    );
    expect(await findBalance(db, caller.id)).toEqual({ currency: "EUR", micros: 7_000 });
  });

  it("moves a batch of one caller's plans in order: each sees the balance the ones before it left, debit before refund", async () => {
    // Three SMS (0.072 each) take the whole credit; none is sent. When they are superseded together, the first
    // plan finds the balance empty (its own SMS is refunded only after its next step is paid): email 0.001 and
    // voice 0.15 are skipped, push is free. Its refund then pays the others' email steps.
    const first = await started({ credit: 3 * 72_000, catalogue: PRICED });
    const { deps, caller } = first;
    const others = [];
    for (let i = 0; i < 2; i++) others.push((await sendOtp(deps, caller, sendCommand({ destination: { phone: uniquePhone(), email: `b${i}@example.com`, pushToken: `tok-b${i}` } }), newTrace())).verification.id);
    expect(await findBalance(db, caller.id)).toEqual({ currency: "EUR", micros: 0 });
    deps.clock.advance(15_000);
    expect(await advanceDuePlans(deps, 10)).toBe(3);

    const attempts = await db.selectFrom("attempts").select(["channel", "status"]).where("verification_id", "in", [first.id, ...others]).execute();
    const next = attempts.filter((a) => a.channel !== "sms").map((a) => a.channel).sort();
    expect(next).toEqual(["email", "email", "push"]);
    expect(attempts.filter((a) => a.channel === "sms").map((a) => a.status)).toEqual(["CANCELED", "CANCELED", "CANCELED"]);
    expect(await findBalance(db, caller.id)).toEqual({ currency: "EUR", micros: 3 * 72_000 - 2 * 1_000 });
    const entries = await db.selectFrom("ledger_entries").select(["kind", "amount_micros"]).where("caller_id", "=", caller.id).execute();
    expect(entries.reduce((sum, e) => sum + e.amount_micros, 0)).toBe(3 * 72_000 - 2 * 1_000);
    expect(entries.filter((e) => e.kind === "refund")).toHaveLength(3);
  });

  it("refuses a send the balance cannot pay, writing nothing; never overdraws under parallel sends", async () => {
    const deps = serviceDeps(db, { catalogue: PRICED });
    const broke = { id: `broke-${backend.name}` };
    await openBalance(db, broke.id, { currency: "EUR", micros: 0 }, deps.clock.now());
    await expect(sendOtp(deps, broke, sendCommand(), newTrace())).rejects.toThrow("balance 0.00 EUR cannot pay the sms step (0.072 EUR)");
    expect(await db.selectFrom("verifications").select("id").where("caller_id", "=", broke.id).execute()).toEqual([]);

    const thrifty = { id: `thrifty-${backend.name}` };
    await openBalance(db, thrifty.id, { currency: "EUR", micros: 200_000 }, deps.clock.now());
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => sendOtp(deps, thrifty, sendCommand(), newTrace())));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(2);
    expect(await findBalance(db, thrifty.id)).toEqual({ currency: "EUR", micros: 56_000 });
  });

  it("an attempt superseded before a worker started it is canceled, refunded, and never sent", async () => {
    const { deps, caller, attempts, tick } = await started({ credit: 1_000_000, catalogue: PRICED });
    const sms = (await attempts())[0]!;
    deps.clock.advance(15_000);
    await tick();
    expect((await attempts()).map((a) => [a.channel, a.status])).toEqual([["sms", "CANCELED"], ["email", "QUEUED"]]);
    expect(await findBalance(db, caller.id)).toEqual({ currency: "EUR", micros: 1_000_000 - 1_000 });
    // The SMS's dispatch message arrives late (backlog, NATS outage): the worker drops it.
    const provider = new CountingProvider();
    expect(await attemptHandler(deps, provider, { routes: PRICED.routes })(await dispatchMessage(db, sms.id))).toEqual({ kind: "ack" });
    expect(provider.calls.size).toBe(0);
    expect(await findBalance(db, caller.id)).toEqual({ currency: "EUR", micros: 1_000_000 - 1_000 });
  });

  it("an attempt whose provider call is in flight at its deadline is left to finish: recorded and charged, the next step queued", async () => {
    const { deps, caller, attempts, tick } = await started({ credit: 1_000_000, catalogue: PRICED });
    const sms = (await attempts())[0]!;
    const provider = new GatedProvider();
    const sending = attemptHandler(deps, provider, { routes: PRICED.routes })(await dispatchMessage(db, sms.id));
    await provider.called;
    deps.clock.advance(15_000);
    await tick();
    expect((await attempts()).map((a) => [a.channel, a.status])).toEqual([["sms", "QUEUED"], ["email", "QUEUED"]]);
    provider.release();
    expect(await sending).toEqual({ kind: "ack" });
    expect((await attempts()).map((a) => [a.channel, a.status, a.providerMessageId])).toEqual([["sms", "SUBMITTED", `p-${sms.id}`], ["email", "QUEUED", undefined]]);
    expect(await findBalance(db, caller.id)).toEqual({ currency: "EUR", micros: 1_000_000 - 72_000 - 1_000 });
  });

  it("an attempt whose call failed for certain after its step was superseded is not sent again on redelivery", async () => {
    const { deps, caller, attempts, tick } = await started({ credit: 1_000_000, catalogue: PRICED });
    const sms = (await attempts())[0]!;
    const provider = new GatedProvider();
    provider.failNext = new ProviderError("provider answered 503", true, "http_503");
    const handle = attemptHandler(deps, provider, { routes: PRICED.routes });
    const sending = handle(await dispatchMessage(db, sms.id));
    await provider.called;
    deps.clock.advance(15_000);
    await tick(); // the email step takes over while the SMS call is still out
    provider.release();
    expect((await sending).kind).toBe("nak"); // nothing was sent: a retry would be allowed, were the step still current
    expect(await handle(await dispatchMessage(db, sms.id, 2))).toEqual({ kind: "ack" });
    expect(provider.calls.get(sms.id)).toBe(1);
    expect((await attempts()).map((a) => [a.channel, a.status])).toEqual([["sms", "CANCELED"], ["email", "QUEUED"]]);
    expect(await findBalance(db, caller.id)).toEqual({ currency: "EUR", micros: 1_000_000 - 1_000 });
  });

  it.each(["approved", "canceled", "expired"] as const)("a verification %s while its SMS is with the provider keeps that SMS's id and charge, and its receipt", async (ending) => {
    const { deps, caller, id, attempts, code, tick } = await started({ credit: 1_000_000, catalogue: PRICED });
    const sms = (await attempts())[0]!;
    const provider = new GatedProvider();
    const sending = attemptHandler(deps, provider, { routes: PRICED.routes })(await dispatchMessage(db, sms.id));
    await provider.called;
    if (ending === "approved") expect((await verifyOtp(deps, caller, id, await code())).outcome).toBe("APPROVED");
    if (ending === "canceled") await cancelOtp(deps, caller, id);
    if (ending === "expired") {
      deps.clock.advance(600_000);
      expect(await expireDue(deps)).toBeGreaterThanOrEqual(1);
    }
    provider.release();
    await sending;
    expect(await applyReceipt(deps, { provider: "sandbox", providerMessageId: `p-${sms.id}`, status: "DELIVERED", occurredAt: deps.clock.now() })).toBe("applied");
    deps.clock.advance(60_000);
    await tick();
    expect((await attempts()).map((a) => [a.channel, a.status, a.providerMessageId])).toEqual([["sms", "DELIVERED", `p-${sms.id}`]]);
    expect(await findBalance(db, caller.id)).toEqual({ currency: "EUR", micros: 1_000_000 - 72_000 });
  });

  it("names the channel whose code was used: each attempt carries its own code, and earlier ones stay valid", async () => {
    const submitAll = async (s: Awaited<ReturnType<typeof started>>) => {
      for (const attempt of (await s.attempts()).filter((a) => a.status === "QUEUED")) {
        await recordSubmitted(s.deps, (await findAttempt(db, attempt.id))!, { providerMessageId: `p-${attempt.id}`, delivered: false, firstPollAt: null });
      }
    };
    for (const used of ["sms", "email"] as const) {
      const s = await started();
      await submitAll(s);
      s.deps.clock.advance(15_000);
      await s.tick();
      await submitAll(s); // the SMS and the email both went out
      const [smsCode, emailCode] = [await s.code("sms"), await s.code("email")];
      expect(smsCode).not.toBe(emailCode);
      const result = await verifyOtp(s.deps, s.caller, s.id, used === "sms" ? smsCode : emailCode);
      expect(result).toMatchObject({ outcome: "APPROVED", channel: used });
      expect((await s.details()).events.at(-1)).toMatchObject({ kind: "VERIFIED", channel: used });
    }
  });

  it("refunds attempts canceled before they were sent", async () => {
    const { deps, caller, id } = await started({ credit: 1_000_000, catalogue: PRICED });
    expect(await findBalance(db, caller.id)).toEqual({ currency: "EUR", micros: 928_000 });
    await cancelOtp(deps, caller, id);
    await cancelOtp(deps, caller, id);
    expect(await findBalance(db, caller.id)).toEqual({ currency: "EUR", micros: 1_000_000 });
  });
});
