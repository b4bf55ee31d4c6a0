import { describe, expect, it } from "vitest";
import { subjectMatches } from "../../src/bus/bus.js";
import { MemoryBus } from "../../src/bus/memory-bus.js";
import { DISPATCH_SUBJECTS } from "../../src/bus/subjects.js";
import { busContract } from "./bus-contract.js";

busContract("in-process", async () => new MemoryBus({ workQueueSubjects: [DISPATCH_SUBJECTS] }));

describe("subjectMatches", () => {
  it.each([
    ["otp.dispatch.>", "otp.dispatch.sms", true],
    ["otp.dispatch.>", "otp.dispatch", false],
    ["otp.*.sms", "otp.dispatch.sms", true],
    ["otp.*", "otp.dispatch.sms", false],
    ["otp.events.vrf_1", "otp.events.vrf_1", true],
    ["otp.events.vrf_1", "otp.events.vrf_2", false],
  ])("%s matches %s: %s", (pattern, subject, expected) => {
    expect(subjectMatches(pattern, subject)).toBe(expected);
  });
});
