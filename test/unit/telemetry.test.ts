import { Writable } from "node:stream";
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonLogger } from "../../src/telemetry/logger.js";
import { telemetryRequested } from "../../src/telemetry/sdk.js";
import { contextOf, inSpan, markSpan, traceOfActive } from "../../src/telemetry/spans.js";
import { cryptoRandom } from "../../src/domain/ports.js";

describe("whether telemetry starts", () => {
  it("only when an exporter or an OTLP endpoint is asked for, and not when the SDK is disabled", () => {
    expect(telemetryRequested({})).toBe(false);
    expect(telemetryRequested({ OTEL_SERVICE_NAME: "otp", OTEL_TRACES_SAMPLER: "parentbased_traceidratio" })).toBe(false);
    expect(telemetryRequested({ OTEL_TRACES_EXPORTER: "none", OTEL_METRICS_EXPORTER: "none" })).toBe(false);
    expect(telemetryRequested({ OTEL_TRACES_EXPORTER: "otlp" })).toBe(true);
    expect(telemetryRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toBe(true);
    expect(telemetryRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SDK_DISABLED: "true" })).toBe(false);
  });
});

function capture(): { lines: () => Array<Record<string, unknown>>; stream: Writable } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, lines: () => chunks.join("").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("log lines", () => {
  it("are JSON with time, level, component and message; secrets' names are redacted; levels below the set one are dropped", () => {
    const out = capture();
    const log = jsonLogger("serve", "warn", out.stream);
    log.info("not written");
    log.warn("provider refused", { provider: "bridgex", apiKey: "k-123", headers: { authorization: "Bearer t-456" }, token: "t-789" });
    const [line, ...rest] = out.lines();
    expect(rest).toEqual([]);
    expect(line).toMatchObject({ level: "warn", component: "serve", message: "provider refused", provider: "bridgex" });
    expect(new Date(String(line!.time)).getTime()).not.toBeNaN();
    const text = JSON.stringify(line);
    for (const secret of ["k-123", "t-456", "t-789"]) expect(text).not.toContain(secret);
  });

  it("carry no trace ids without tracing", () => {
    const out = capture();
    jsonLogger("serve", "info", out.stream).info("hello");
    expect(out.lines()[0]).not.toHaveProperty("trace_id");
  });
});

describe("with an SDK", () => {
  const contextManager = new AsyncLocalStorageContextManager();
  beforeAll(() => {
    context.setGlobalContextManager(contextManager.enable());
    trace.setGlobalTracerProvider(new BasicTracerProvider());
  });
  afterAll(() => {
    trace.disable();
    context.disable();
  });

  it("a line written in a span carries its trace and span ids", async () => {
    const out = capture();
    const log = jsonLogger("worker", "info", out.stream);
    const ids = await inSpan("otp.dispatch", {}, async (span) => {
      log.info("sending");
      return span.spanContext();
    });
    log.info("after");
    const [inside, after] = out.lines();
    expect(inside).toMatchObject({ trace_id: ids.traceId, span_id: ids.spanId });
    expect(after).not.toHaveProperty("trace_id");
  });

  it("a span under a stored traceparent continues its trace, and what is stored next is the span's own context", async () => {
    const stored = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    await inSpan("otp.receipt", { parent: contextOf(stored) }, async (span) => {
      const made = traceOfActive(undefined, cryptoRandom);
      expect(made.traceId).toBe("0af7651916cd43dd8448eb211c80319c");
      expect(made.spanId).toBe(span.spanContext().spanId);
      expect(made.spanId).not.toBe("b7ad6b7169203331");
    });
    const marked = markSpan("otp.fallback", stored, {}, cryptoRandom);
    expect(marked.traceId).toBe("0af7651916cd43dd8448eb211c80319c");
    expect(marked.spanId).not.toBe("b7ad6b7169203331");
  });
});

describe("without an SDK", () => {
  it("the stored context continues the caller's trace with a fresh span id, as before telemetry", () => {
    const stored = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const made = markSpan("otp.fallback", stored, {}, cryptoRandom);
    expect(made.traceId).toBe("0af7651916cd43dd8448eb211c80319c");
    expect(made.spanId).not.toBe("b7ad6b7169203331");
    expect(made.traceparent).toBe(`00-0af7651916cd43dd8448eb211c80319c-${made.spanId}-01`);
    expect(traceOfActive(stored, cryptoRandom).traceId).toBe("0af7651916cd43dd8448eb211c80319c");
  });
});
