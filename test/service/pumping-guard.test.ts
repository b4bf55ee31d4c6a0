import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PreconditionError } from "../../src/domain/errors.js";
import { DEFAULT_PUMPING } from "../../src/domain/pumping.js";
import { PumpingGuard } from "../../src/service/pumping-guard.js";
import { sendOtp } from "../../src/service/send-otp.js";
import type { Db } from "../../src/store/database.js";
import { releasePrefixBlock } from "../../src/store/repositories/prefix-blocks.js";
import { convertOnce } from "../harness/conversion-traffic.js";
import { BACKENDS } from "../harness/databases.js";
import { FakeClock, recordingLogger } from "../harness/fakes.js";
import { newTrace, sendCommand, serviceDeps } from "../harness/service-fixture.js";

/** The i-th number of a prefix, each in a range of 100 of its own (a run of sequential numbers meets its own limit first). */
const number = (prefix: string, i: number) => `${prefix}${String(i).padStart(3, "0")}00`;

describe.each(BACKENDS)("SMS-pumping defence on $name", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it("blocks a prefix with many sends and no approvals while its country converts, refuses SMS and calls to it, and lifts the block on release", async () => {
    const deps = serviceDeps(db);
    const log = recordingLogger();
    const guard = new PumpingGuard(db, deps.clock, DEFAULT_PUMPING, deps.limits.numberPrefixDigits, log);
    const guarded = { ...deps, phoneBlocked: guard.blockedReason };
    const caller = { id: `pumping-${backend.name}` };
    // The country converts: 40 sends over 40 prefixes, 34 approved.
    for (let i = 0; i < 40; i++) await convertOnce(deps, caller, `+3162${String(i).padStart(2, "0")}${String(i).padStart(5, "0")}`, { approve: i < 34 });
    // The attack: 29 sends to +316555…, none verified — under the volume floor.
    for (let i = 0; i < 29; i++) await convertOnce(deps, caller, number("+316555", i), { approve: false });
    await guard.refresh();
    expect(guard.blockedReason(number("+316555", 99))).toBeUndefined();

    await convertOnce(deps, caller, number("+316555", 29), { approve: false });
    await guard.refresh();
    const reason = "30 sends and 0 approvals in 10 min (conversion 0 %; the rest of NL 85 %)";
    const until = new Date(deps.clock.now().getTime() + DEFAULT_PUMPING.blockMs).toISOString();
    expect(guard.blockedReason(number("+316555", 99))).toBe(`numbers starting +316555 are blocked until ${until} as SMS pumping: ${reason}`);
    expect(guard.blockedReason("+31620012345")).toBeUndefined();
    expect(guard.flagged()).toEqual(["+316555"]);
    expect(log.lines).toEqual([
      {
        level: "warn",
        message: `SMS pumping suspected on prefix +316555: ${reason}; SMS and calls to it refused until ${until}`,
        fields: { prefix: "+316555", country: "NL", mode: "block" },
      },
    ]);

    // SMS and voice steps are left out: with an email address the code still goes out by email, without one the send is refused.
    const withEmail = await sendOtp(guarded, caller, sendCommand({ destination: { phone: number("+316555", 100), email: "someone@example.com" } }), newTrace());
    expect(withEmail.firstAttempt.channel).toBe("email");
    await expect(sendOtp(guarded, caller, sendCommand({ destination: { phone: number("+316555", 101) } }), newTrace())).rejects.toThrow(PreconditionError);
    await expect(sendOtp(guarded, caller, sendCommand({ destination: { phone: number("+316555", 101) } }), newTrace())).rejects.toThrow(
      /no step of the plan can be sent: numbers starting \+316555 are blocked until/,
    );

    // A second replica finds the same prefix: the first one's flag stands, and only the first one reported it.
    const otherLog = recordingLogger();
    const otherReplica = new PumpingGuard(db, deps.clock, DEFAULT_PUMPING, deps.limits.numberPrefixDigits, otherLog);
    await otherReplica.refresh();
    expect(otherReplica.blockedReason(number("+316555", 1))).toBeDefined();
    expect(otherLog.lines).toEqual([]);

    // Released by an operator: no longer refused, and the sends before the release no longer count against it.
    deps.clock.advance(1_000);
    expect(await releasePrefixBlock(db, "+316555", deps.clock.now())).toMatchObject({ prefix: "+316555" });
    deps.clock.advance(60_000);
    await guard.refresh();
    expect(guard.blockedReason(number("+316555", 1))).toBeUndefined();
    expect(guard.flagged()).toEqual([]);
    expect(await releasePrefixBlock(db, "+316999", deps.clock.now())).toBeUndefined();
  });

  it("in monitor mode flags and reports without refusing; an allowed prefix is never flagged", async () => {
    const clock = new FakeClock(Date.parse("2026-11-23T10:00:00Z"));
    const deps = serviceDeps(db, { clock });
    const caller = { id: `pumping-monitor-${backend.name}` };
    for (let i = 0; i < 30; i++) await convertOnce(deps, caller, number("+316556", i), { approve: false });
    // An attack on two prefixes at once: each is judged against the country's quiet traffic, not the other.
    for (let i = 0; i < 30; i++) await convertOnce(deps, caller, number("+316558", i), { approve: false });
    for (let i = 0; i < 30; i++) await convertOnce(deps, caller, number("+324712", i), { approve: false });
    const log = recordingLogger();
    const guard = new PumpingGuard(db, clock, { ...DEFAULT_PUMPING, mode: "monitor", allow: ["+32471"] }, deps.limits.numberPrefixDigits, log);
    await guard.refresh();
    expect(guard.flagged()).toEqual(["+316556", "+316558"]);
    expect(guard.blockedReason(number("+316556", 1))).toBeUndefined();
    expect(log.lines.map((l) => l.message).sort()).toEqual([
      "SMS pumping suspected on prefix +316556: 30 sends and 0 approvals in 10 min (conversion 0 %; too little other traffic to compare); monitor mode: nothing refused",
      "SMS pumping suspected on prefix +316558: 30 sends and 0 approvals in 10 min (conversion 0 %; too little other traffic to compare); monitor mode: nothing refused",
    ]);

    // Switched to block: the monitored prefix is blocked (reported again), the allowed one still is not.
    const blocking = new PumpingGuard(db, clock, { ...DEFAULT_PUMPING, allow: ["+32471"] }, deps.limits.numberPrefixDigits, log);
    await blocking.refresh();
    expect(blocking.blockedReason(number("+316556", 1))).toBeDefined();
    expect(blocking.blockedReason(number("+324712", 1))).toBeUndefined();
    // A block that ran out, on a prefix still pumped, is flagged again.
    clock.advance(DEFAULT_PUMPING.blockMs);
    for (let i = 30; i < 60; i++) await convertOnce(deps, caller, number("+316556", i), { approve: false });
    await blocking.refresh();
    expect(blocking.blockedReason(number("+316556", 1))).toContain(`until ${new Date(clock.now().getTime() + DEFAULT_PUMPING.blockMs).toISOString()}`);
  });
});
