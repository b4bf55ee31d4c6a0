import type { Client } from "@connectrpc/connect";
import type { DescService } from "@bufbuild/protobuf";
import { setTimeout as sleep } from "node:timers/promises";
import { boxBusyPercent, cpuPerCall, sampleCpu } from "./cpu.js";
import { grpcJsClient } from "./grpc-js-client.js";

/** What one load run measured. */
export interface LoadResult {
  readonly name: string;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** Calls completed, warm-up included (what the box's CPU time was spent on). */
  readonly calls?: number;
  /** CPU ms per call, by process group (bench/cpu.ts), where measured. */
  readonly cpuMsPerCall?: Record<string, number>;
  /** The box's busy share of its cores over the measure (warm-up included), where measured with the CPU. */
  readonly boxBusyPercent?: number;
  /** Complete flows at a fixed rate: from SendOtp's call to the provider's answer (the time of the attempt's ATTEMPT_SUBMITTED event). */
  readonly toProvider?: { readonly p50Ms: number; readonly p99Ms: number };
}

/**
 * Runs `call` as fast as `connections × inFlight` concurrent callers allow for
 * `seconds` (after a warm-up of a tenth of that), and reports the rate and the
 * latency percentiles. Bounded in time: every caller stops at the deadline.
 */
export async function saturate(name: string, seconds: number, concurrency: number, call: (worker: number) => Promise<unknown>): Promise<LoadResult> {
  const warmUntil = Date.now() + (seconds * 1000) / 10;
  const end = warmUntil + seconds * 1000;
  const latencies: number[] = [];
  let errors = 0;
  let calls = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (Date.now() < end) {
        const started = performance.now();
        const ok = await call(worker).then(
          () => true,
          () => false,
        );
        calls += 1;
        if (Date.now() < warmUntil) continue;
        if (ok) latencies.push(performance.now() - started);
        else errors += 1;
      }
    }),
  );
  return { name, perSecond: Math.round(latencies.length / seconds), ...percentiles(latencies), errors, calls };
}

/**
 * Starts `call` at a fixed `rate` per second for `seconds`, whether or not
 * earlier calls have finished (an open loop, as independent users would), and
 * reports each call's latency from the moment it was due, not from when it
 * could start: a stalled server shows in the percentiles instead of slowing
 * the load down. Bounded: rate × seconds calls, each bounded by the server's deadline.
 */
export async function atRate(name: string, rate: number, seconds: number, call: (index: number) => Promise<unknown>): Promise<LoadResult> {
  const total = Math.max(1, Math.round(rate * seconds));
  const started = performance.now();
  const latencies: number[] = [];
  let errors = 0;
  const calls: Array<Promise<void>> = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    calls.push(
      call(i).then(
        () => void latencies.push(performance.now() - due),
        () => void (errors += 1),
      ),
    );
  }
  await Promise.all(calls);
  const elapsed = (performance.now() - started) / 1000;
  return { name, perSecond: Math.round(latencies.length / elapsed), ...percentiles(latencies), errors, calls: total };
}

/** The median and the 99th percentile of `latencies` (ms), rounded to 0.1 ms. */
export function percentiles(latencies: number[]): { p50Ms: number; p99Ms: number } {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { p50Ms: round(at(0.5)), p99Ms: round(at(0.99)) };
}

/** `connections` gRPC clients of `service` on their own HTTP/2 connections to `port`; callers pick one by index. */
export function clients<S extends DescService>(service: S, port: number, connections: number): Array<Client<S>> {
  return Array.from({ length: connections }, () => grpcJsClient(service, port));
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** Runs a load measure and adds the CPU each process group spent per call meanwhile, and how busy the box was. */
export async function withCpu(measure: () => Promise<LoadResult>): Promise<LoadResult> {
  const before = sampleCpu();
  const startedAt = performance.now();
  const result = await measure();
  const after = sampleCpu();
  return { ...result, cpuMsPerCall: cpuPerCall(before, after, result.calls ?? 0), boxBusyPercent: boxBusyPercent(before, after, performance.now() - startedAt) };
}
