import { register } from "node:module";
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
  const [{ NodeSDK }, { getNodeAutoInstrumentations }] = await Promise.all([
    import("@opentelemetry/sdk-node"),
    import("@opentelemetry/auto-instrumentations-node"),
  ]);
  sdk = new NodeSDK({
    instrumentations: [
      getNodeAutoInstrumentations({
        // A span per file read, DNS lookup or socket says nothing about a verification and costs on every call.
        "@opentelemetry/instrumentation-fs": { enabled: false },
        "@opentelemetry/instrumentation-dns": { enabled: false },
        "@opentelemetry/instrumentation-net": { enabled: false },
        // Statements of a step (a call, a dispatch, a receipt) join its trace; the loops' polling would be most traces.
        "@opentelemetry/instrumentation-pg": { requireParentSpan: true },
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

/** Exports what is buffered and stops the SDK (end of the process); a no-op when it never started. */
export async function shutdownTelemetry(): Promise<void> {
  const running = sdk;
  sdk = undefined;
  await running?.shutdown().catch(() => undefined);
}
