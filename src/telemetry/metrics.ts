import { metrics, type Attributes } from "@opentelemetry/api";
import type { EscalationCause } from "../domain/fallback.js";

/**
 * The service's metrics, through the OpenTelemetry metrics API: exported by
 * OTLP when `OTEL_METRICS_EXPORTER` asks for it, and always scrapeable on
 * `GET /metrics` (sdk.ts). Names are as Prometheus shows them (counters get
 * `_total`). Labels are bounded: a country, a route, a channel, an outcome —
 * never a verification, an address or a provider's free text.
 */

/** Receipt latencies from under a second to the longest a code lives (10 minutes). */
const LATENCY_BUCKETS_S = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600];
/** Scheduler lateness: the loop polls every 250 ms; anything past seconds is a backlog. */
const LATENESS_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

/** Sends per shared statement: 1 when calls come one by one, up to the 64 a statement takes. */
const GROUP_BUCKETS = [1, 2, 4, 8, 16, 32, 64];

/**
 * Made on first use: the metrics API hands out no-op instruments until a
 * meter provider is registered (sdk.ts, before a role records anything), and
 * they stay no-ops.
 */
let made: ReturnType<typeof makeInstruments> | undefined;
const use = () => (made ??= makeInstruments());

const makeInstruments = (meter = metrics.getMeter("otp-orchestrator")) => ({
  sends: meter.createCounter("otp_sends", { description: "Attempts queued to a channel, by channel, route and destination country" }),
  submits: meter.createCounter("otp_provider_submits", { description: "Provider submissions, by channel, route and result (accepted, rejected, failed)" }),
  receipts: meter.createCounter("otp_receipts", { description: "Final delivery receipts applied, by channel, route and status" }),
  receiptLatency: meter.createHistogram("otp_receipt_latency_seconds", {
    description: "Time from submission to the provider to its final receipt",
    advice: { explicitBucketBoundaries: LATENCY_BUCKETS_S },
  }),
  verifications: meter.createCounter("otp_verifications", { description: "Code checks, by outcome; approvals by the channel and route that delivered the code, and the country" }),
  escalations: meter.createCounter("otp_fallback_escalations", { description: "Fallback escalations to the next channel (or to none left), by reason" }),
  rescues: meter.createCounter("otp_fallback_rescues", { description: "Approvals with a code that a later fallback step delivered" }),
  lateReceipts: meter.createCounter("otp_late_receipts", {
    description: "Delivered receipts for a step the plan had already escalated past: the fallback send was needless, by channel and route",
  }),
  pumpingFlags: meter.createCounter("otp_pumping_flags", {
    description: "Number prefixes flagged as SMS pumping, by destination country and mode (block, monitor)",
  }),
  circuitChanges: meter.createCounter("otp_route_circuit_changes", {
    description: "Conversion circuits of a route to a country changing state, by route, country and the state entered",
  }),
  cost: meter.createCounter("otp_cost_micros", { description: "Price of attempts submitted to providers, in micro-units of the currency" }),
  providerErrors: meter.createCounter("otp_provider_errors", { description: "Failed provider submissions, by provider and error code" }),
  watchStreams: meter.createUpDownCounter("otp_watch_streams", { description: "WatchDelivery streams open on this process" }),
  lateness: meter.createHistogram("otp_scheduler_lateness_seconds", {
    description: "How late after its deadline a fallback step was taken",
    advice: { explicitBucketBoundaries: LATENESS_BUCKETS_S },
  }),
  groupSizes: meter.createHistogram("otp_send_group_size", {
    description: "Sends that shared one statement, by statement (admission: the limits' counting; write: unmetered callers' new verifications)",
    advice: { explicitBucketBoundaries: GROUP_BUCKETS },
  }),
  meter,
});


export const otpMetrics = {
  sent(step: { channel: string; routeId: string; country?: string | undefined }): void {
    use().sends.add(1, { channel: step.channel, route: step.routeId, country: step.country ?? "" });
  },
  submitted(labels: { channel: string; route: string }, result: "accepted" | "rejected" | "failed"): void {
    use().submits.add(1, { channel: labels.channel, route: labels.route, result });
  },
  providerError(provider: string, code: string): void {
    use().providerErrors.add(1, { provider, code });
  },
  charged(currency: string, micros: number): void {
    if (micros > 0) use().cost.add(micros, { currency });
  },
  /** `late`: a delivery for a step the plan had already left (counted in otp_late_receipts_total too). */
  receipt(labels: { channel: string; route: string }, status: string, latencyMs: number | undefined, late = false): void {
    use().receipts.add(1, { channel: labels.channel, route: labels.route, status });
    if (latencyMs !== undefined && status === "DELIVERED") use().receiptLatency.record(latencyMs / 1000, labels);
    if (late && status === "DELIVERED") use().lateReceipts.add(1, labels);
  },
  /** A check; an approval names the channel and route of the attempt whose code it was, and the destination's country. */
  verified(outcome: string, rescued: boolean, by: { channel?: string | undefined; route?: string | undefined; country?: string | undefined }): void {
    use().verifications.add(1, { outcome, channel: by.channel ?? "", route: by.route ?? "", country: by.country ?? "" });
    if (rescued) use().rescues.add(1);
  },
  pumpingFlagged(country: string, mode: string): void {
    use().pumpingFlags.add(1, { country, mode });
  },
  circuitChanged(route: string, country: string, state: string): void {
    use().circuitChanges.add(1, { route, country, state });
  },
  escalated(reason: EscalationCause): void {
    use().escalations.add(1, { reason });
  },
  grouped(statement: "admission" | "write", sends: number): void {
    use().groupSizes.record(sends, { statement });
  },
  late(seconds: number): void {
    use().lateness.record(Math.max(0, seconds));
  },
  streamOpened(): void {
    use().watchStreams.add(1);
  },
  streamClosed(): void {
    use().watchStreams.add(-1);
  },
  /** A gauge read when metrics are collected (a scrape or an export), e.g. a count from the database. */
  observe(name: string, description: string, read: () => Promise<ReadonlyArray<{ value: number; attributes?: Attributes }>>): void {
    use().meter.createObservableGauge(name, { description }).addCallback(async (result) => {
      // A database away must not fail the scrape: the gauge is simply absent meanwhile.
      const values = await read().catch(() => []);
      for (const { value, attributes } of values) result.observe(value, attributes);
    });
  },
};
