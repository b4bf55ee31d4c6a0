import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Channel, DeliveryEventKind } from "../../gen/otp/v1/common_pb.js";
import { StatsGrouping, VerificationStatus, VerifyStatus } from "../../gen/otp/v1/otp_service_pb.js";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { RunningApp } from "../../src/app.js";
import { auth, codeFromInbox, otpClient, TRANSPORTS, type OtpClient } from "../harness/app-fixture.js";
import { startTestApp } from "../harness/app-fixture.js";
import { waitFor } from "../harness/free-port.js";
import { uniquePhone } from "../harness/service-fixture.js";

/** The rejection of `call` as a ConnectError. */
async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the call to fail");
}

const KEEP_ALIVE_MS = 300;
let app: RunningApp;
beforeAll(async () => {
  app = await startTestApp({ limits: { sendsPerDestination: { max: 3, windowMs: 600_000 } }, watchKeepAliveMs: KEEP_ALIVE_MS });
});
afterAll(async () => {
  await app?.stop();
});

// One suite, every transport: auth, validation, error mapping and streaming must not differ between ports.
describe.each(TRANSPORTS)("OtpService over $name", ({ make }) => {
  let client: OtpClient;
  beforeAll(() => {
    client = otpClient(make(app));
  });

  it("sends a code that VerifyOtp approves once", async () => {
    const phone = uniquePhone();
    const sent = await client.sendOtp({ destination: { phone }, brand: "Acme", originDomain: "example.com" }, auth("checkout"));
    expect(sent.verificationId).toMatch(/^vrf_/);
    expect(sent.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(sent.firstAttempt).toMatchObject({ channel: Channel.SMS, routeId: "sandbox-sms" });
    expect(sent.steps[0]).toMatchObject({ destinationMasked: expect.stringContaining("*"), segments: 1 });
    const code = await codeFromInbox(app, sent.verificationId);
    const message = app.core.inbox.list(phone)[0]!;
    expect(message.body.split("\n").at(-1)).toBe(`@example.com #${code}`);

    const approved = await client.verifyOtp({ verificationId: sent.verificationId, code }, auth("checkout"));
    expect(approved).toMatchObject({ status: VerifyStatus.APPROVED, attemptId: sent.firstAttempt!.attemptId, channel: Channel.SMS });
    const again = await client.verifyOtp({ verificationId: sent.verificationId, code }, auth("checkout"));
    expect(again.status).toBe(VerifyStatus.ALREADY_APPROVED);
  });

  it("answers a wrong code with WRONG_CODE and the attempts left", async () => {
    const sent = await client.sendOtp({ destination: { phone: uniquePhone() } }, auth("checkout"));
    const code = await codeFromInbox(app, sent.verificationId);
    const wrong = code === "000000" ? "111111" : "000000";
    const result = await client.verifyOtp({ verificationId: sent.verificationId, code: wrong }, auth("checkout"));
    expect(result).toMatchObject({ status: VerifyStatus.WRONG_CODE, remainingAttempts: 4 });
  });

  it("rejects invalid input with INVALID_ARGUMENT and one field violation per problem", async () => {
    const error = await rejection(
      client.sendOtp({ destination: { phone: "0612345678", email: "nope" }, codeLength: 12, embeddedOriginDomain: "pay.example" }, auth("checkout")),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    const [badRequest] = error.findDetails(BadRequestSchema);
    expect(badRequest?.fieldViolations.map((v) => v.field).sort()).toEqual(["code_length", "destination.email", "destination.phone", "embedded_origin_domain"]);
    const verify = await rejection(client.verifyOtp({ verificationId: "", code: "12ab" }, auth("checkout")));
    expect(verify.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(["verification_id", "code"]);
    const stats = await rejection(client.getDeliveryStats({ groupBy: [StatsGrouping.ROUTE, StatsGrouping.ROUTE, 9 as StatsGrouping] }, auth("checkout")));
    expect(stats.code).toBe(Code.InvalidArgument);
    expect(stats.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => [v.field, v.description])).toEqual([
      ["from", "is required: the start of the window"],
      ["group_by[1]", "ROUTE is given twice"],
      ["group_by[2]", "must be CHANNEL, ROUTE, COUNTRY or STEP"],
    ]);
    const tooLong = await rejection(
      client.getDeliveryStats({ from: timestampFromMs(Date.now() - 32 * 86_400_000), to: timestampFromMs(Date.now()) }, auth("checkout")),
    );
    expect(tooLong.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(["to"]);
    const fine = await rejection(
      client.getDeliveryStats({ from: timestampFromMs(Date.now() - 86_400_000), interval: { seconds: 30n } }, auth("checkout")),
    );
    expect(fine.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => [v.field, v.description])).toEqual([["interval", "must be at least one minute"]]);
  });

  it("reports the caller's delivery statistics for a window, grouped by channel", async () => {
    // From now: the other transports' runs of this test, earlier, are outside the window.
    const from = timestampFromMs(Date.now());
    const { verificationId } = await client.sendOtp({ destination: { phone: uniquePhone() } }, auth("billing"));
    expect((await client.verifyOtp({ verificationId, code: await codeFromInbox(app, verificationId) }, auth("billing"))).status).toBe(VerifyStatus.APPROVED);
    const { rows } = await client.getDeliveryStats({ from, groupBy: [StatsGrouping.CHANNEL] }, auth("billing"));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ channel: Channel.SMS, routeId: "", country: "", attempts: 1n, approved: 1n, conversion: 1 });
  });

  it("requires a known bearer token", async () => {
    expect((await rejection(client.listRoutes({}))).code).toBe(Code.Unauthenticated);
    expect((await rejection(client.listRoutes({}, { headers: { authorization: "Bearer wrong" } }))).code).toBe(Code.Unauthenticated);
  });

  it("shows a caller only its own verifications", async () => {
    const sent = await client.sendOtp({ destination: { phone: uniquePhone() } }, auth("checkout"));
    const error = await rejection(client.getVerification({ verificationId: sent.verificationId }, auth("billing")));
    expect(error.code).toBe(Code.NotFound);
    expect((await rejection(client.verifyOtp({ verificationId: sent.verificationId, code: "123456" }, auth("billing")))).code).toBe(Code.NotFound);
  });

  it("limits sends per destination with RESOURCE_EXHAUSTED", async () => {
    const phone = uniquePhone();
    for (let i = 0; i < 3; i++) await client.sendOtp({ destination: { phone } }, auth("checkout"));
    expect((await rejection(client.sendOtp({ destination: { phone } }, auth("checkout")))).code).toBe(Code.ResourceExhausted);
  });

  it("returns the same verification for a repeated idempotency key, ALREADY_EXISTS for a different request", async () => {
    const request = { idempotencyKey: `order-${Math.random()}`, destination: { phone: uniquePhone() } };
    const first = await client.sendOtp(request, auth("checkout"));
    expect((await client.sendOtp(request, auth("checkout"))).verificationId).toBe(first.verificationId);
    const error = await rejection(client.sendOtp({ ...request, destination: { phone: uniquePhone() } }, auth("checkout")));
    expect(error.code).toBe(Code.AlreadyExists);
  });

  it("streams every event in order and ends after VERIFIED; resumes after a sequence", async () => {
    const sent = await client.sendOtp({ destination: { phone: uniquePhone() } }, auth("checkout"));
    const code = await codeFromInbox(app, sent.verificationId);
    const kinds: DeliveryEventKind[] = [];
    const sequences: bigint[] = [];
    const stream = client.watchDelivery({ verificationId: sent.verificationId }, auth("checkout"));
    let verified = false;
    for await (const { event } of stream) {
      if (event === undefined) continue; // a keep-alive
      kinds.push(event!.kind);
      sequences.push(event!.sequence);
      expect(event!.traceId).toBe(sent.traceId);
      if (event!.kind === DeliveryEventKind.ATTEMPT_DELIVERED && !verified) {
        verified = true;
        await client.verifyOtp({ verificationId: sent.verificationId, code }, auth("checkout"));
      }
    }
    expect(kinds).toEqual([
      DeliveryEventKind.VERIFICATION_CREATED,
      DeliveryEventKind.ATTEMPT_QUEUED,
      DeliveryEventKind.ATTEMPT_SUBMITTED,
      DeliveryEventKind.ATTEMPT_DELIVERED,
      DeliveryEventKind.VERIFIED,
    ]);
    expect(sequences).toEqual([1n, 2n, 3n, 4n, 5n]);
    const resumed = [];
    for await (const { event } of client.watchDelivery({ verificationId: sent.verificationId, afterSequence: 3n }, auth("checkout"))) {
      if (event) resumed.push(event.sequence);
    }
    expect(resumed).toEqual([4n, 5n]);
  });

  it("keeps an idle stream alive with keep-alive messages, then ends it on the final event", async () => {
    const sent = await client.sendOtp({ destination: { phone: uniquePhone() } }, auth("checkout"));
    let keepAlives = 0;
    const last: DeliveryEventKind[] = [];
    for await (const response of client.watchDelivery({ verificationId: sent.verificationId }, auth("checkout"))) {
      if (response.event) {
        last.push(response.event.kind);
        continue;
      }
      expect(response.keepAliveAt).toBeDefined();
      // After two keep-alives on a quiet stream, end the verification: the stream must end with it.
      if (++keepAlives === 2) await client.cancelOtp({ verificationId: sent.verificationId }, auth("checkout"));
    }
    expect(keepAlives).toBeGreaterThanOrEqual(2);
    expect(last.at(-1)).toBe(DeliveryEventKind.CANCELED);
  });

  it("cancels a verification: its code is then refused with CANCELED", async () => {
    const sent = await client.sendOtp({ destination: { phone: uniquePhone() } }, auth("checkout"));
    const code = await codeFromInbox(app, sent.verificationId);
    // The inbox has the code while the provider call is still out: its record (submitted, then the sandbox's receipt)
    // may commit after the cancel, and legitimately after its event. Cancel once the SMS's outcome is recorded.
    const delivered = async () => (await client.getVerification({ verificationId: sent.verificationId }, auth("checkout"))).events.some((e) => e.kind === DeliveryEventKind.ATTEMPT_DELIVERED);
    await waitFor("the SMS's delivery recorded", delivered, 10_000);
    const canceled = await client.cancelOtp({ verificationId: sent.verificationId }, auth("checkout"));
    expect(canceled.verification?.status).toBe(VerificationStatus.CANCELED);
    expect((await client.verifyOtp({ verificationId: sent.verificationId, code }, auth("checkout"))).status).toBe(VerifyStatus.CANCELED);
    const details = await client.getVerification({ verificationId: sent.verificationId }, auth("checkout"));
    expect(details.events.at(-1)?.kind).toBe(DeliveryEventKind.CANCELED);
  });

  it("continues the caller's W3C trace", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const sent = await client.sendOtp(
      { destination: { phone: uniquePhone() } },
      { headers: { ...auth("checkout").headers, traceparent: `00-${traceId}-00f067aa0ba902b7-01` } },
    );
    expect(sent.traceId).toBe(traceId);
  });

  it("lists routes and estimates a plan", async () => {
    const routes = await client.listRoutes({}, auth("checkout"));
    expect(routes.routes.map((r) => r.routeId).sort()).toEqual(["sandbox-email", "sandbox-push", "sandbox-sms", "sandbox-voice", "sandbox-whatsapp"]);
    // The sandbox delivers everything it is given: every route reads healthy.
    expect(routes.routes.every((r) => r.health?.healthy === true && r.health.deliveryRate === 1)).toBe(true);
    expect((await client.listRoutes({ channel: Channel.EMAIL }, auth("checkout"))).routes.map((r) => r.routeId)).toEqual(["sandbox-email"]);
    const estimate = await client.estimateOtp({ destination: { phone: uniquePhone(), email: "a@example.com" } }, auth("checkout"));
    expect(estimate.steps.map((s) => s.channel)).toEqual([Channel.SMS, Channel.EMAIL, Channel.VOICE]);
    expect(estimate.worstCaseTotal?.currencyCode).toBe("EUR");
    expect((await client.listRoutes({ channel: Channel.WHATSAPP }, auth("checkout"))).routes.map((r) => [r.routeId, r.channel])).toEqual([["sandbox-whatsapp", Channel.WHATSAPP]]);
    const whatsappFirst = await client.estimateOtp({ destination: { phone: uniquePhone() }, channels: [Channel.WHATSAPP, Channel.SMS] }, auth("checkout"));
    expect(whatsappFirst.steps.map((s) => [s.channel, s.routeId, s.segments])).toEqual([
      [Channel.WHATSAPP, "sandbox-whatsapp", 1],
      [Channel.SMS, "sandbox-sms", 1],
    ]);
  });
});
