import type { IncomingMessage, ServerResponse } from "node:http";
import { register } from "node:module";
import { metrics } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider, PeriodicExportingMetricReader, type IMetricReader } from "@opentelemetry/sdk-metrics";
import type { NodeSDK } from "@opentelemetry/sdk-node";

/** The standard variables that ask for telemetry to be exported; with none of them set, no SDK starts. */
const EXPORT_VARIABLES = [
  "OTEL_TRACES_EXPORTER",
  "OTEL_METRICS_EXPORTER",
  "OTEL_LOGS_EXPORTER",
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
  "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
] as const;

/**
 * Whether the environment asks for telemetry: any exporter or OTLP endpoint
 * set (to anything but `none`), and `OTEL_SDK_DISABLED` not `true`. Unset,
 * nothing starts and nothing connects anywhere.
 */
export function telemetryRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return false;
  return EXPORT_VARIABLES.some((name) => {
    const value = env[name]?.trim();
    return value !== undefined && value !== "" && value.toLowerCase() !== "none";
  });
}

let sdk: NodeSDK | undefined;
/** The reader behind `GET /metrics`: pulled on each scrape, it connects nowhere. */
const prometheus = new PrometheusExporter({ preventServerStart: true });
let metersReady = false;

/**
 * Starts the OpenTelemetry SDK, configured by the standard `OTEL_*`
 * variables only, with the instrumentations of the libraries this service
 * uses (pg, grpc-js, http, undici/fetch, pino). It must run before the
 * application's modules are imported: instrumentations patch a library when it
 * loads. The loader hook lets them patch libraries imported from ES modules.
 */
export async function startTelemetry(env: NodeJS.ProcessEnv): Promise<void> {
  if (sdk !== undefined || !telemetryRequested(env)) return;
  register("@opentelemetry/instrumentation/hook.mjs", import.meta.url);
  // Loaded only when asked for: the SDK, its instrumentations and the OTLP exporters are a few hundred modules, a
  // good part of a start that has none of them to do.
  const [{ NodeSDK }, { getNodeAutoInstrumentations }, otlpReaders] = await Promise.all([
    import("@opentelemetry/sdk-node"),
    import("@opentelemetry/auto-instrumentations-node"),
    otlpMetricReaders(env),
  ]);
  metersReady = true;
  sdk = new NodeSDK({
    // Given readers replace the SDK's own reading of OTEL_METRICS_EXPORTER: /metrics, and OTLP as the variables say.
    metricReaders: [prometheus, ...otlpReaders],
    instrumentations: [
      getNodeAutoInstrumentations({
        // A span per file read, DNS lookup or socket says nothing about a verification and costs on every call.
        "@opentelemetry/instrumentation-fs": { enabled: false },
        "@opentelemetry/instrumentation-dns": { enabled: false },
        "@opentelemetry/instrumentation-net": { enabled: false },
        // Statements of a step (a call, a dispatch, a receipt) join its trace; the loops' polling would be most traces.
        // A span per pooled connection taken would double the spans of every call for nothing a trace reader needs.
        "@opentelemetry/instrumentation-pg": { requireParentSpan: true, ignoreConnectSpans: true },
        // Our logger adds the ids itself (logger.ts); the instrumentation only exports the lines (OTEL_LOGS_EXPORTER).
        "@opentelemetry/instrumentation-pino": { disableLogCorrelation: true },
        // Health checks and metric scrapes would be most of the traces.
        "@opentelemetry/instrumentation-grpc": { ignoreGrpcMethods: [/^Check$/, /^Watch$/] },
        "@opentelemetry/instrumentation-http": { ignoreIncomingRequestHook: (request) => request.url === "/metrics" },
      }),
    ],
  });
  sdk.start();
}

/**
 * OTLP metric readers as `OTEL_METRICS_EXPORTER` (default `otlp`; `none`
 * for none) and `OTEL_EXPORTER_OTLP_(METRICS_)PROTOCOL` ask; the exporters
 * read their endpoint, headers and interval variables themselves. Prometheus
 * needs no variable: `/metrics` is always served.
 */
async function otlpMetricReaders(env: NodeJS.ProcessEnv): Promise<IMetricReader[]> {
  const exporters = (env.OTEL_METRICS_EXPORTER ?? "").split(",").map((e) => e.trim().toLowerCase()).filter(Boolean);
  if (exporters.includes("none") || (exporters.length > 0 && !exporters.includes("otlp"))) return [];
  const protocol = (env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf").trim();
  const { OTLPMetricExporter } = await (protocol === "grpc"
    ? import("@opentelemetry/exporter-metrics-otlp-grpc")
    : protocol === "http/json"
      ? import("@opentelemetry/exporter-metrics-otlp-http")
      : import("@opentelemetry/exporter-metrics-otlp-proto"));
  const exporter = new OTLPMetricExporter();
  const interval = Number(env.OTEL_METRIC_EXPORT_INTERVAL);
  return [new PeriodicExportingMetricReader({ exporter, ...(interval > 0 ? { exportIntervalMillis: interval } : {}) })];
}

/**
 * Makes sure metrics are recorded: by the SDK's meter provider when
 * telemetry started, else by one that only feeds `/metrics`. Every role calls
 * it before it records anything.
 */
export function enableMetrics(): void {
  if (metersReady) return;
  metersReady = true;
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [prometheus] }));
}

/** `GET /metrics`: the Prometheus text exposition of this process's metrics. */
export function serveMetrics(request: IncomingMessage, response: ServerResponse): void {
  enableMetrics();
  prometheus.getMetricsRequestHandler(request, response);
}

/** Exports what is buffered and stops the SDK (end of the process); a no-op when it never started. */
export async function shutdownTelemetry(): Promise<void> {
  const running = sdk;
  sdk = undefined;
  await running?.shutdown().catch(() => undefined);
}
