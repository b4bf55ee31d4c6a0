import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expireDue } from "../../src/service/end-verification.js";
import { sendOtp } from "../../src/service/send-otp.js";
import { openDatabase, migrateToLatest, type Db } from "../../src/store/database.js";
import { traceOfActive } from "../../src/telemetry/spans.js";
import { cryptoRandom } from "../../src/domain/ports.js";
import { sendCommand, serviceDeps } from "../harness/service-fixture.js";

/**
 * The expiry sweep with an SDK in the process (the process tests cover the
 * other steps): each expired verification gets an `otp.expire` span in its own
 * trace, under the send's stored context.
 */
describe("otp.expire", () => {
  const exporter = new InMemorySpanExporter();
  let db: Db;
  beforeAll(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    db = await openDatabase({ kind: "pglite" });
    await migrateToLatest(db);
  });
  afterAll(async () => {
    trace.disable();
    context.disable();
    await db?.destroy();
  });

  it("is a child of the verification's send, one per verification the sweep ends", async () => {
    const deps = serviceDeps(db);
    const caller = { id: "expiry" };
    const sends = [];
    for (let i = 0; i < 2; i++) {
      // As the RPC does: the send's stored context is its span's.
      const sent = await trace.getTracer("test").startActiveSpan("otp.send", async (span) => {
        try {
          return await sendOtp(deps, caller, sendCommand({ ttlMs: 60_000 }), traceOfActive(undefined, cryptoRandom));
        } finally {
          span.end();
        }
      });
      sends.push(sent);
    }
    deps.clock.advance(60_001);
    expect(await expireDue(deps)).toBe(2);

    const spans = exporter.getFinishedSpans();
    const sendSpans = spans.filter((s) => s.name === "otp.send");
    const expires = spans.filter((s) => s.name === "otp.expire");
    expect(expires).toHaveLength(2);
    for (const sent of sends) {
      const expire = expires.find((s) => s.attributes["otp.verification_id"] === sent.verification.id)!;
      expect(expire.attributes["otp.status"]).toBe("EXPIRED");
      expect(expire.spanContext().traceId).toBe(sent.verification.traceId);
      expect(sendSpans.map((s) => s.spanContext().spanId)).toContain(expire.parentSpanContext?.spanId);
    }
  });
});
