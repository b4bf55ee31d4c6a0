import * as grpc from "@grpc/grpc-js";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromBinary } from "@bufbuild/protobuf";
import { OtpService, VerifyOtpRequestSchema } from "../../gen/otp/v1/otp_service_pb.js";
import type { RunningApp } from "../../src/app.js";
import { auth, startTestApp, TOKENS } from "../harness/app-fixture.js";
import { bearerMetadata } from "../harness/stock-grpc-client.js";

/** Text as an attacker types it: anything, control characters and NULs included, sometimes long. */
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("", "\u0000", "a\u0000b", "+31612345678", "v@x.org,a.bc", "x".repeat(5_000), "vrf_\u0000", "%00", "' or 1=1 --"),
);
const channelNumber = fc.integer({ min: -3, max: 9 });
/** Mostly unset, sometimes hostile: a request with one bad field among good ones is the one that reaches the store. */
const rarely = <T>(arbitrary: fc.Arbitrary<T>, unset: T = "" as T) => fc.oneof({ arbitrary: fc.constant(unset), weight: 6 }, { arbitrary, weight: 1 });

const sendRequest = fc.record({
  idempotencyKey: rarely(text),
  // Valid addresses half the time, so hostile values elsewhere reach the database rather than stop at the phone.
  destination: fc.record({
    phone: fc.oneof(fc.constantFrom("+31612345678", "+31687654321", "+12025550123"), text),
    email: fc.oneof(fc.constant(""), fc.constant("v@x.org"), rarely(text)),
    pushToken: rarely(text),
    voicePhone: rarely(text),
  }),
  policy: rarely(text),
  channels: rarely(fc.array(channelNumber, { maxLength: 6 }), []),
  overrides: rarely(fc.array(fc.record({ channel: channelNumber, routeId: text, sender: text }), { maxLength: 3 }), []),
  locale: rarely(text),
  brand: rarely(text),
  originDomain: rarely(text),
  embeddedOriginDomain: rarely(text),
  androidAppHash: rarely(text),
  codeLength: rarely(fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constant(2 ** 32 - 1)), 0),
  // Any duration the wire formats can carry (JSON: ±315,576,000,000 s, nanos of the same sign).
  ttl: fc.option(
    fc.tuple(fc.bigInt(0n, 315_576_000_000n), fc.integer({ min: 0, max: 999_999_999 }), fc.boolean()).map(([seconds, nanos, negative]) => (negative ? { seconds: -seconds, nanos: -nanos } : { seconds, nanos })),
    { nil: undefined, freq: 2 },
  ),
  clientReference: rarely(text),
  metadata: fc.oneof(fc.constant({}), fc.dictionary(text, text, { maxKeys: 4 })),
  clientIp: rarely(text),
  deviceId: rarely(text),
  estimateId: rarely(text),
});

/**
 * Every request message on every protocol, filled with hostile values: the
 * answer is a result or a clear error, never INTERNAL or UNKNOWN, and a
 * refused send writes nothing.
 */
describe("hostile input on every protocol", () => {
  let app: RunningApp;
  beforeAll(async () => {
    const unlimited = { max: 1_000_000, windowMs: 60_000 };
    app = await startTestApp({ limits: { sendsPerCaller: unlimited, sendsPerClientIp: unlimited, sendsPerDestination: unlimited, sendsPerNumberRange: unlimited } });
  });
  afterAll(async () => {
    await app?.stop();
  });

  const transports: Array<[string, () => Transport]> = [
    ["gRPC on the grpc-js port", () => createGrpcTransport({ baseUrl: `http://127.0.0.1:${app.grpcPort}` })],
    ["Connect JSON over HTTP/1.1", () => createConnectTransport({ baseUrl: `http://127.0.0.1:${app.httpPort}`, httpVersion: "1.1", useBinaryFormat: false })],
    ["Connect binary over h2c", () => createConnectTransport({ baseUrl: `http://127.0.0.1:${app.httpPort}`, httpVersion: "2" })],
    ["gRPC-Web over h2c", () => createGrpcWebTransport({ baseUrl: `http://127.0.0.1:${app.httpPort}`, httpVersion: "2" })],
  ];

  const codeOf = (error: unknown) => ConnectError.from(error).code;
  const verifications = async () => Number((await app.core.service.db.selectFrom("verifications").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow()).n);

  it.each(transports)("%s: no request message answers INTERNAL, and a refused send writes nothing", async (_, make) => {
    const client = createClient(OtpService, make());
    const headers = auth("checkout");
    await fc.assert(
      fc.asyncProperty(sendRequest, async (request) => {
        const before = await verifications();
        const sent = await client.sendOtp(request, headers).then(() => undefined, codeOf);
        expect([Code.Internal, Code.Unknown]).not.toContain(sent);
        if (sent !== undefined) expect(await verifications()).toBe(before);
        const estimated = await client.estimateOtp(request, headers).then(() => undefined, codeOf);
        expect([Code.Internal, Code.Unknown]).not.toContain(estimated);
      }),
      { numRuns: 100 },
    );
    await fc.assert(
      fc.asyncProperty(text, text, fc.bigInt(0n, 2n ** 64n - 1n), text, channelNumber, async (id, code, afterSequence, country, channel) => {
        const answers = [
          await client.verifyOtp({ verificationId: id, code }, headers).then(() => undefined, codeOf),
          await client.getVerification({ verificationId: id }, headers).then(() => undefined, codeOf),
          await client.cancelOtp({ verificationId: id }, headers).then(() => undefined, codeOf),
          await client.listRoutes({ country, channel }, headers).then(() => undefined, codeOf),
          await (async () => {
            for await (const _item of client.watchDelivery({ verificationId: id, afterSequence }, { ...headers, signal: AbortSignal.timeout(2_000) })) return undefined;
          })().then(() => undefined, codeOf),
        ];
        for (const answer of answers) expect([Code.Internal, Code.Unknown]).not.toContain(answer);
      }),
      { numRuns: 40 },
    );
  });

  it("answers INVALID_ARGUMENT to an after_sequence beyond what a sequence can be", async () => {
    const client = createClient(OtpService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${app.grpcPort}` }));
    const sent = await client.sendOtp({ destination: { phone: "+31612345678" } }, auth("checkout"));
    const stream = client.watchDelivery({ verificationId: sent.verificationId, afterSequence: 2n ** 63n }, { ...auth("checkout"), signal: AbortSignal.timeout(5_000) });
    const error = await (async () => {
      for await (const _item of stream) return undefined;
    })().then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(error?.findDetails).toBeDefined();
  });

  it("answers INVALID_ARGUMENT to an unknown enum name in JSON instead of dropping it (and sending an SMS)", async () => {
    const response = await fetch(`http://127.0.0.1:${app.httpPort}/otp.v1.OtpService/SendOtp`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKENS.checkout}` },
      body: JSON.stringify({ destination: { phone: "+31612345679" }, channels: ["CHANNEL_FAX"] }),
    });
    expect(((await response.json()) as { code: string }).code).toBe("invalid_argument");
  });

  it("answers malformed JSON with INVALID_ARGUMENT on the HTTP port", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 64 }), async (body) => {
        fc.pre(!isJsonObject(body));
        const response = await fetch(`http://127.0.0.1:${app.httpPort}/otp.v1.OtpService/VerifyOtp`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${TOKENS.checkout}` },
          body,
        });
        expect(((await response.json()) as { code: string }).code).toBe("invalid_argument");
      }),
      { numRuns: 30 },
    );
  });

  /** Wraps a payload in the 5-byte envelope of gRPC, gRPC-Web and Connect streaming. */
  const envelope = (payload: Uint8Array) => {
    const frame = Buffer.alloc(5 + payload.length);
    frame.writeUInt32BE(payload.length, 1);
    frame.set(payload, 5);
    return frame;
  };
  const post = (path: string, contentType: string, body: Uint8Array, extra: Record<string, string> = {}) =>
    fetch(`http://127.0.0.1:${app.httpPort}${path}`, { method: "POST", headers: { "content-type": contentType, authorization: `Bearer ${TOKENS.checkout}`, ...extra }, body });

  it("answers malformed protobuf bytes with INVALID_ARGUMENT on every protocol of the HTTP port, never INTERNAL", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), async (bytes) => {
        fc.pre(!parses(bytes));
        // Connect unary: HTTP 400 with code invalid_argument.
        const unary = await post("/otp.v1.OtpService/VerifyOtp", "application/proto", bytes);
        expect(unary.status).toBe(400);
        expect(((await unary.json()) as { code: string }).code).toBe("invalid_argument");
        // gRPC-Web: the trailer frame says grpc-status 3.
        const web = Buffer.from(await (await post("/otp.v1.OtpService/VerifyOtp", "application/grpc-web+proto", envelope(bytes), { "x-grpc-web": "1" })).arrayBuffer());
        expect(web.toString("latin1")).toMatch(/grpc-status: ?3(\r\n|$)/);
        // Connect streaming (WatchDelivery): the end-of-stream frame's error is invalid_argument.
        const stream = Buffer.from(await (await post("/otp.v1.OtpService/WatchDelivery", "application/connect+proto", envelope(bytes), { "connect-protocol-version": "1" })).arrayBuffer());
        expect(stream.toString("utf8")).toContain('"code":"invalid_argument"');
      }),
      { numRuns: 20 },
    );
    // gRPC over h2c on the HTTP port, from a plain grpc-js client sending the raw bytes.
    const code = await new Promise<number>((resolve) => {
      const raw = new grpc.Client(`127.0.0.1:${app.httpPort}`, grpc.credentials.createInsecure());
      const metadata = bearerMetadata(TOKENS.checkout);
      raw.makeUnaryRequest("/otp.v1.OtpService/VerifyOtp", (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x0a, 0xff]), metadata, (error) => {
        raw.close();
        resolve(error?.code ?? 0);
      });
    });
    expect(code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it("answers malformed protobuf bytes with INVALID_ARGUMENT on the gRPC port", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), async (bytes) => {
        fc.pre(!parses(bytes));
        const grpcCode = await new Promise<number>((resolve) => {
          const raw = new grpc.Client(`127.0.0.1:${app.grpcPort}`, grpc.credentials.createInsecure());
          const metadata = bearerMetadata(TOKENS.checkout);
          raw.makeUnaryRequest("/otp.v1.OtpService/VerifyOtp", (b: Buffer) => b, (b: Buffer) => b, Buffer.from(bytes), metadata, (error) => {
            raw.close();
            resolve(error?.code ?? 0);
          });
        });
        expect(grpcCode).toBe(grpc.status.INVALID_ARGUMENT);
      }),
      { numRuns: 30 },
    );
  });
});

function isJsonObject(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

function parses(bytes: Uint8Array): boolean {
  try {
    fromBinary(VerifyOtpRequestSchema, bytes);
    return true;
  } catch {
    return false;
  }
}
