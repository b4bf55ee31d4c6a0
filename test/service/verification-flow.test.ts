import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdempotencyConflictError, NotFoundError, RateLimitedError } from "../../src/domain/errors.js";
import { cancelOtp, expireDue, getVerification } from "../../src/service/end-verification.js";
import { sendOtp } from "../../src/service/send-otp.js";
import { verifyOtp } from "../../src/service/verify-otp.js";
import type { Db } from "../../src/store/database.js";
import { DEFAULT_POLICIES } from "../../src/config/sandbox-catalogue.js";
import { findBalance, openBalance } from "../../src/store/repositories/ledger.js";
import type { OutboxMessage } from "../../src/store/repositories/outbox.js";
import { BACKENDS, dumpAllText } from "../harness/databases.js";
import { newTrace, pricedRoute, sendCommand, serviceDeps, uniquePhone } from "../harness/service-fixture.js";

const caller = { id: "checkout" };

describe.each(BACKENDS)("verification flow on $name", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  /** The code, as only a worker can open it: from the sealed copy. */
  async function codeOf(deps: ReturnType<typeof serviceDeps>, verificationId: string): Promise<string> {
    const row = await db.selectFrom("verifications").select("sealed_code").where("id", "=", verificationId).executeTakeFirstOrThrow();
    return deps.protector.unseal(verificationId, row.sealed_code);
  }

  it("writes the verification, its first attempt, its events and the dispatch message together, with no plaintext code", async () => {
    const deps = serviceDeps(db);
    const result = await sendOtp(deps, caller, sendCommand({ destination: { phone: uniquePhone(), email: "jane@example.com" }, codeLength: 8 }), newTrace());
    const id = result.verification.id;
    expect(result.firstAttempt).toMatchObject({ channel: "sms", status: "QUEUED", routeId: "sandbox-sms" });
    expect(result.verification.steps.map((s) => s.channel)).toEqual(["sms", "email", "voice"]);
    const details = await getVerification(deps, caller, id);
    expect(details.events.map((e) => [e.sequence, e.kind])).toEqual([[1, "VERIFICATION_CREATED"], [2, "ATTEMPT_QUEUED"]]);
    const outbox = await db.selectFrom("outbox").select("subject").where("msg_id", "like", `${id}%`).execute();
    expect(outbox.map((o) => o.subject)).toEqual([`otp.events.${id}`, `otp.events.${id}`]);
    expect(await db.selectFrom("outbox").select("subject").where("msg_id", "=", result.firstAttempt.id).executeTakeFirst()).toEqual({
      subject: "otp.dispatch.sms",
    });
    const code = await codeOf(deps, id);
    expect(await dumpAllText(db)).not.toContain(code);
  });

  it("approves the right code once; a second call is ALREADY_APPROVED and queued attempts are canceled", async () => {
    const deps = serviceDeps(db);
    const { verification, firstAttempt } = await sendOtp(deps, caller, sendCommand(), newTrace());
    const code = await codeOf(deps, verification.id);
    expect(await verifyOtp(deps, caller, verification.id, code)).toMatchObject({ outcome: "APPROVED", remainingAttempts: 5, attemptId: firstAttempt.id, channel: "sms" });
    expect(await verifyOtp(deps, caller, verification.id, code)).toMatchObject({ outcome: "ALREADY_APPROVED" });
    const details = await getVerification(deps, caller, verification.id);
    expect(details.verification.status).toBe("APPROVED");
    expect(details.attempts[0]?.status).toBe("CANCELED");
    expect(details.events.at(-1)?.kind).toBe("VERIFIED");
  });

  it("counts five wrong codes down to zero, then refuses even the right code", async () => {
    const deps = serviceDeps(db);
    const { verification } = await sendOtp(deps, caller, sendCommand(), newTrace());
    const code = await codeOf(deps, verification.id);
    const wrong = code === "000000" ? "111111" : "000000";
    const remaining = [];
    for (let i = 0; i < 5; i++) {
      const result = await verifyOtp(deps, caller, verification.id, wrong);
      expect(result.outcome).toBe("WRONG_CODE");
      remaining.push(result.remainingAttempts);
    }
    expect(remaining).toEqual([4, 3, 2, 1, 0]);
    expect(await verifyOtp(deps, caller, verification.id, code)).toEqual({ outcome: "MAX_ATTEMPTS", remainingAttempts: 0 });
  });

  it("approves exactly one of 20 racing correct calls", async () => {
    const deps = serviceDeps(db);
    const { verification } = await sendOtp(deps, caller, sendCommand(), newTrace());
    const code = await codeOf(deps, verification.id);
    const results = await Promise.all(Array.from({ length: 20 }, () => verifyOtp(deps, caller, verification.id, code)));
    expect(results.filter((r) => r.outcome === "APPROVED")).toHaveLength(1);
    expect(results.filter((r) => r.outcome === "ALREADY_APPROVED")).toHaveLength(19);
  });

  it("expires at its ttl: verify says EXPIRED, the sweep records it and cancels unsent attempts", async () => {
    const deps = serviceDeps(db);
    const { verification } = await sendOtp(deps, caller, sendCommand({ ttlMs: 60_000 }), newTrace());
    const code = await codeOf(deps, verification.id);
    deps.clock.advance(60_000);
    expect((await verifyOtp(deps, caller, verification.id, code)).outcome).toBe("EXPIRED");
    expect(await expireDue(deps)).toBeGreaterThanOrEqual(1);
    const details = await getVerification(deps, caller, verification.id);
    expect(details.verification.status).toBe("EXPIRED");
    expect(details.attempts[0]?.status).toBe("CANCELED");
    expect(details.events.at(-1)?.kind).toBe("EXPIRED");
  });

  it("the sweep ends a batch together: each its EXPIRED event at its own next number, unsent attempts canceled and refunded, the rest untouched", async () => {
    const routes = (["sms", "email", "voice", "push"] as const).map((channel) => pricedRoute(channel, channel === "sms" ? 72_000 : 0, "sweep"));
    const published: string[] = [];
    const deps = { ...serviceDeps(db, { catalogue: { routes, policies: DEFAULT_POLICIES } }), onOutboxWritten: (messages: readonly OutboxMessage[]) => void published.push(...messages.map((m) => m.msgId)) };
    const [a, b, c] = ["a", "b", "c"].map((name) => ({ id: `sweep-${backend.name}-${name}` }));
    for (const metered of [a!, b!]) await openBalance(db, metered.id, { currency: "EUR", micros: 1_000_000 }, deps.clock.now());
    const send = async (who: { id: string }, ttlMs = 60_000) => (await sendOtp(deps, who, sendCommand({ ttlMs }), newTrace())).verification.id;
    const unsentA = await send(a!);
    const startedA = await send(a!);
    const unsentB = await send(b!);
    const approvedC = await send(c!);
    const laterC = await send(c!, 120_000);
    // A provider call for startedA's SMS is out: its message may arrive, so it stays charged.
    await db.updateTable("attempts").set({ submit_started_at: deps.clock.now() }).where("verification_id", "=", startedA).execute();
    expect((await verifyOtp(deps, c!, approvedC, await codeOf(deps, approvedC))).outcome).toBe("APPROVED");
    published.length = 0;

    deps.clock.advance(60_000);
    expect(await expireDue(deps)).toBeGreaterThanOrEqual(3);
    const ended = [unsentA, startedA, unsentB];
    for (const id of ended) {
      const details = await getVerification(deps, id === unsentB ? b! : a!, id);
      expect(details.verification.status).toBe("EXPIRED");
      expect(details.events.map((e) => [e.sequence, e.kind])).toEqual([[1, "VERIFICATION_CREATED"], [2, "ATTEMPT_QUEUED"], [3, "EXPIRED"]]);
      expect(details.attempts.map((t) => t.status)).toEqual([id === startedA ? "QUEUED" : "CANCELED"]);
    }
    expect(published.filter((m) => ended.some((id) => m === `${id}.3`))).toHaveLength(3);
    expect(await findBalance(db, a!.id)).toEqual({ currency: "EUR", micros: 1_000_000 - 72_000 });
    expect(await findBalance(db, b!.id)).toEqual({ currency: "EUR", micros: 1_000_000 });
    expect((await getVerification(deps, c!, approvedC)).verification.status).toBe("APPROVED");
    expect((await getVerification(deps, c!, laterC)).verification.status).toBe("PENDING");
    // Nothing left for the next sweep of these.
    expect(await db.selectFrom("verifications").select("id").where("id", "in", ended).where("status", "=", "PENDING").execute()).toEqual([]);
  });

  it("hides another caller's verification behind NOT_FOUND", async () => {
    const deps = serviceDeps(db);
    const { verification } = await sendOtp(deps, caller, sendCommand(), newTrace());
    await expect(verifyOtp(deps, { id: "intruder" }, verification.id, "123456")).rejects.toThrow(NotFoundError);
    await expect(getVerification(deps, { id: "intruder" }, verification.id)).rejects.toThrow(NotFoundError);
  });

  it("cancels: CANCELED for verify, unsent attempts stopped, idempotent", async () => {
    const deps = serviceDeps(db);
    const { verification } = await sendOtp(deps, caller, sendCommand(), newTrace());
    const code = await codeOf(deps, verification.id);
    expect((await cancelOtp(deps, caller, verification.id)).verification.status).toBe("CANCELED");
    expect((await cancelOtp(deps, caller, verification.id)).events.filter((e) => e.kind === "CANCELED")).toHaveLength(1);
    expect((await verifyOtp(deps, caller, verification.id, code)).outcome).toBe("CANCELED");
  });

  it("returns the same verification for a repeated idempotency key and refuses it for another request", async () => {
    const deps = serviceDeps(db);
    const command = sendCommand({ idempotencyKey: `key-${Math.random()}` });
    const first = await sendOtp(deps, caller, command, newTrace());
    const again = await sendOtp(deps, caller, command, newTrace());
    expect(again.verification.id).toBe(first.verification.id);
    await expect(sendOtp(deps, caller, { ...command, render: { brand: "Other" } }, newTrace())).rejects.toThrow(IdempotencyConflictError);
    // Another caller's key space is separate.
    const other = await sendOtp(deps, { id: "billing" }, command, newTrace());
    expect(other.verification.id).not.toBe(first.verification.id);
  });

  it("limits sends per destination and writes nothing for a refused send", async () => {
    const deps = serviceDeps(db, { limits: { sendsPerDestination: { max: 2, windowMs: 600_000 } } });
    const destination = { phone: uniquePhone() };
    await sendOtp(deps, caller, sendCommand({ destination }), newTrace());
    await sendOtp(deps, caller, sendCommand({ destination }), newTrace());
    const before = await db.selectFrom("verifications").select(db.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    await expect(sendOtp(deps, caller, sendCommand({ destination }), newTrace())).rejects.toThrow(RateLimitedError);
    const after = await db.selectFrom("verifications").select(db.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);
    // The window slides: once it has passed both sends, the destination may get codes again.
    deps.clock.advance(1_200_000);
    await expect(sendOtp(deps, caller, sendCommand({ destination }), newTrace())).resolves.toBeDefined();
  });

  it("lets no double burst through at a window boundary: 40 a minute means 40 in any minute", async () => {
    const deps = serviceDeps(db, { limits: { sendsPerCaller: { max: 40, windowMs: 60_000 } } });
    const burst = { id: `burst-${backend.name}` };
    deps.clock.advance(56_000); // :56 of a minute
    for (let i = 0; i < 40; i++) await sendOtp(deps, burst, sendCommand(), newTrace());
    deps.clock.advance(4_500); // :00.5 of the next minute: a fixed window would start counting afresh here
    await expect(sendOtp(deps, burst, sendCommand(), newTrace())).rejects.toThrow("too many codes sent by this caller");
    deps.clock.advance(60_000); // a minute after the burst: its sends have slid out of the window
    await expect(sendOtp(deps, burst, sendCommand(), newTrace())).resolves.toBeDefined();
  });

  it("limits sends per client IP across destinations", async () => {
    const deps = serviceDeps(db, { limits: { sendsPerClientIp: { max: 1, windowMs: 600_000 } } });
    await sendOtp(deps, caller, sendCommand({ clientIp: "203.0.113.9" }), newTrace());
    await expect(sendOtp(deps, caller, sendCommand({ clientIp: "203.0.113.9" }), newTrace())).rejects.toThrow(/client IP/);
  });

  it("locks a destination after consecutive wrong codes across verifications, for a growing period", async () => {
    const deps = serviceDeps(db, { limits: { destinationFailureLock: 3, baseLockMs: 60_000 } });
    const destination = { phone: uniquePhone() };
    const wrongTwice = async () => {
      const { verification } = await sendOtp(deps, caller, sendCommand({ destination }), newTrace());
      const code = await codeOf(deps, verification.id);
      const wrong = code === "000000" ? "111111" : "000000";
      await verifyOtp(deps, caller, verification.id, wrong);
      await verifyOtp(deps, caller, verification.id, wrong);
      return { id: verification.id, code };
    };
    await wrongTwice();
    const second = await wrongTwice(); // the 3rd consecutive failure locks
    // Locked: further wrong guesses and sends are refused...
    const wrong = second.code === "000000" ? "111111" : "000000";
    expect(await verifyOtp(deps, caller, second.id, wrong)).toEqual({ outcome: "MAX_ATTEMPTS", remainingAttempts: 0 });
    await expect(sendOtp(deps, caller, sendCommand({ destination }), newTrace())).rejects.toThrow(/locked/);
    // ...but the right code of a live verification still approves: a lock-out cannot be used against the owner.
    expect((await verifyOtp(deps, caller, second.id, second.code)).outcome).toBe("APPROVED");
    // And it is this caller's lock: another service may still send to the address.
    await expect(sendOtp(deps, { id: "another-service" }, sendCommand({ destination }), newTrace())).resolves.toBeDefined();
    deps.clock.advance(60_000);
    const third = await sendOtp(deps, caller, sendCommand({ destination }), newTrace());
    expect((await verifyOtp(deps, caller, third.verification.id, await codeOf(deps, third.verification.id))).outcome).toBe("APPROVED");
  });

  it("counts and locks every address a plan may send to, not only the first step's", async () => {
    const deps = serviceDeps(db, { limits: { sendsPerDestination: { max: 5, windowMs: 600_000 }, destinationFailureLock: 3 } });
    const phone = uniquePhone();
    // A fresh push token first each time, the same phone second: the phone's window still fills.
    const viaPush = () => sendOtp(deps, caller, sendCommand({ destination: { phone, pushToken: `tok-${Math.random()}` }, channels: ["push", "sms"] }), newTrace());
    for (let i = 0; i < 5; i++) await viaPush();
    await expect(viaPush()).rejects.toThrow("too many codes sent to this destination");

    // Wrong codes on such verifications lock the phone, whichever address came first.
    const lockable = serviceDeps(db, { limits: { destinationFailureLock: 3 } });
    const target = uniquePhone();
    const send = () => sendOtp(lockable, caller, sendCommand({ destination: { phone: target, pushToken: `tok-${Math.random()}` }, channels: ["push", "sms"] }), newTrace());
    for (let i = 0; i < 3; i++) {
      const { verification } = await send();
      const code = await codeOf(lockable, verification.id);
      await verifyOtp(lockable, caller, verification.id, code === "000000" ? "111111" : "000000");
    }
    await expect(sendOtp(lockable, caller, sendCommand({ destination: { phone: target } }), newTrace())).rejects.toThrow(/locked/);
  });

  it("keeps address windows per caller, with an optional ceiling across callers", async () => {
    const perCaller = serviceDeps(db, { limits: { sendsPerDestination: { max: 2, windowMs: 600_000 } } });
    const destination = { phone: uniquePhone() };
    const send = (deps: typeof perCaller, id: string) => sendOtp(deps, { id }, sendCommand({ destination }), newTrace());
    await send(perCaller, "shop");
    await send(perCaller, "shop");
    await expect(send(perCaller, "shop")).rejects.toThrow("too many codes sent to this destination");
    await expect(send(perCaller, "bank")).resolves.toBeDefined(); // another service's window

    const capped = serviceDeps(db, { limits: { sendsPerDestination: { max: 2, windowMs: 600_000 }, sendsPerDestinationGlobal: { max: 3, windowMs: 600_000 } } });
    const other = { phone: uniquePhone() };
    const sendOther = (id: string) => sendOtp(capped, { id }, sendCommand({ destination: other }), newTrace());
    await sendOther("shop");
    await sendOther("shop");
    await sendOther("bank");
    await expect(sendOther("games")).rejects.toThrow("too many codes sent to this destination");
  });
});
