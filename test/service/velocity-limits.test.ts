import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateLimitedError } from "../../src/domain/errors.js";
import { sendOtp } from "../../src/service/send-otp.js";
import type { Db } from "../../src/store/database.js";
import { BACKENDS } from "../harness/databases.js";
import { newTrace, sendCommand, serviceDeps, uniquePhone } from "../harness/service-fixture.js";

describe.each(BACKENDS)("velocity limits on $name", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  const verifications = async (callerId: string) =>
    Number((await db.selectFrom("verifications").select((eb) => eb.fn.countAll<number>().as("n")).where("caller_id", "=", callerId).executeTakeFirstOrThrow()).n);

  it("limits codes per device per caller (10 an hour by default), when the request names its device", async () => {
    const deps = serviceDeps(db);
    const caller = { id: `device-${backend.name}` };
    const send = (deviceId: string, callerId = caller.id) => sendOtp(deps, { id: callerId }, sendCommand({ destination: { phone: uniquePhone() }, deviceId }), newTrace());
    for (let i = 0; i < 10; i++) await send("device-1");
    const refused = await send("device-1").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RateLimitedError);
    expect(refused).toMatchObject({ message: "too many codes requested from this device" });
    expect(await verifications(caller.id)).toBe(10); // the refused send wrote nothing
    await send("device-2");
    await send("device-1", `${caller.id}-other`); // another caller's window
    deps.clock.advance(2 * 3_600_000);
    await send("device-1");
  });

  it("limits codes per caller to one country when configured", async () => {
    const deps = serviceDeps(db, { limits: { sendsPerCallerCountry: { max: 3, windowMs: 3_600_000 } } });
    const caller = { id: `country-${backend.name}` };
    for (let i = 0; i < 3; i++) await sendOtp(deps, caller, sendCommand(), newTrace());
    await expect(sendOtp(deps, caller, sendCommand(), newTrace())).rejects.toThrow("too many codes sent to NL by this caller");
    await sendOtp(deps, caller, sendCommand({ destination: { phone: "+32471234567" } }), newTrace());
  });

  it("refuses a run of sequential numbers: 10 codes to one range of 100 numbers in 10 minutes", async () => {
    const deps = serviceDeps(db);
    const caller = { id: `range-${backend.name}` };
    const number = (i: number) => `+3161777${String(i).padStart(4, "0")}`;
    for (let i = 1; i <= 10; i++) await sendOtp(deps, caller, sendCommand({ destination: { phone: number(i) } }), newTrace());
    await expect(sendOtp(deps, caller, sendCommand({ destination: { phone: number(11) } }), newTrace())).rejects.toThrow(
      "too many codes sent to neighbouring numbers (a run of sequential numbers looks like SMS pumping)",
    );
    await sendOtp(deps, caller, sendCommand({ destination: { phone: number(101) } }), newTrace()); // the next range
    deps.clock.advance(20 * 60_000);
    await sendOtp(deps, caller, sendCommand({ destination: { phone: number(12) } }), newTrace());
  });

  it("lets exactly the limit through when a run of sequential numbers arrives at once", async () => {
    const deps = serviceDeps(db);
    const caller = { id: `range-race-${backend.name}` };
    const results = await Promise.allSettled(
      Array.from({ length: 25 }, (_, i) => sendOtp(deps, caller, sendCommand({ destination: { phone: `+3161778${String(i).padStart(4, "0")}` } }), newTrace())),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(10);
    expect(results.filter((r) => r.status === "rejected").every((r) => (r as PromiseRejectedResult).reason instanceof RateLimitedError)).toBe(true);
    expect(await verifications(caller.id)).toBe(10);
  });
});
