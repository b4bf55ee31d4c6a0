import { isSpanContextValid, trace } from "@opentelemetry/api";
import { pino, type Level } from "pino";

/** Structured logger. Callers pass ids and counts, never codes, keys or tokens (and the names below are redacted anyway). */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const LOG_LEVELS: readonly Level[] = ["fatal", "error", "warn", "info", "debug", "trace"];

/** Field names whose values never reach a log line, at the top level or one object down. */
const REDACTED = ["token", "authorization", "apiKey", "api_key", "password", "secret", "sealedCode", "plaintext"];

/**
 * JSON lines on stderr through pino: `time` (ISO), `level` (its name),
 * `component` (the role), `message`, the fields, and — while an RPC, a
 * dispatch message or a receipt is handled with tracing on — `trace_id` and
 * `span_id` of the active span. Written synchronously, so a line logged just
 * before the process exits is not lost.
 */
export function jsonLogger(component: string, level: Level = "info", destination: pino.DestinationStream = pino.destination({ fd: 2, sync: true })): Logger {
  const logger = pino(
    {
      level,
      base: { component },
      messageKey: "message",
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED.flatMap((name) => [name, `*.${name}`]), censor: "[redacted]" },
      mixin: activeSpanIds,
    },
    destination,
  );
  return {
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
  };
}

function activeSpanIds(): Record<string, string> {
  const span = trace.getActiveSpan()?.spanContext();
  return span && isSpanContextValid(span) ? { trace_id: span.traceId, span_id: span.spanId } : {};
}

export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };

/** An error's message and name for a log line, without its (possibly large) object graph. */
export function errorFields(error: unknown): Record<string, unknown> {
  if (error instanceof Error) {
    return { error: error.message, errorName: error.name, ...(error.cause instanceof Error ? { cause: error.cause.message } : {}) };
  }
  return { error: String(error) };
}
