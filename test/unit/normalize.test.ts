import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { SendOtpRequestSchema } from "../../gen/otp/v1/otp_service_pb.js";
import { toSendCommand } from "../../src/api/validation.js";
import { normalizeClientIp } from "../../src/domain/client-ip.js";
import { normalizeEmail } from "../../src/domain/destination.js";
import { InvalidInputError } from "../../src/domain/errors.js";

describe("one window per real address", () => {
  it("spells a mailbox one way: case and IDNA", () => {
    expect(normalizeEmail("V@X.ORG")).toBe("v@x.org");
    expect(normalizeEmail("v@Bücher.Example")).toBe("v@xn--bcher-kva.example");
  });

  it.each(["v@x.org,a.bc", "v@x.org;c.de", "Name <v@x.org>", "v@x.org a@b.cd", "v@"])("refuses %j: a list or a display name is not one address", (email) => {
    expect(normalizeEmail(email)).toBeUndefined();
    const request = create(SendOtpRequestSchema, { destination: { email } });
    expect(() => toSendCommand(request)).toThrow(InvalidInputError);
  });

  it("spells a client IP one way: nine spellings of one address are one", () => {
    const spellings = ["2001:db8::1", "2001:DB8::1", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8:0:0:0:0:0:1", "2001:db8::0:1"];
    expect(new Set(spellings.map(normalizeClientIp))).toEqual(new Set(["2001:db8::1"]));
    const v4 = ["203.0.113.9", "::ffff:203.0.113.9", "::FFFF:203.0.113.9", "::ffff:cb00:7109"];
    expect(new Set(v4.map(normalizeClientIp))).toEqual(new Set(["203.0.113.9"]));
    expect(normalizeClientIp("fe80::1%eth0")).toBeUndefined();
    expect(normalizeClientIp("not an ip")).toBeUndefined();
  });

  it("hands the service the normalized spellings", () => {
    const command = toSendCommand(create(SendOtpRequestSchema, { destination: { email: "Jane@Example.ORG" }, clientIp: "::ffff:203.0.113.9" }));
    expect(command.destination.email).toBe("jane@example.org");
    expect(command.clientIp).toBe("203.0.113.9");
  });

  it.each([
    ["push_token", { destination: { pushToken: "tok\u0000en" } }],
    ["metadata", { destination: { phone: "+31612345678" }, metadata: { k: "v\u0000" } }],
  ])("refuses control characters in %s (they would reach the database)", (_, fields) => {
    expect(() => toSendCommand(create(SendOtpRequestSchema, fields))).toThrow(InvalidInputError);
  });
});
