import { getEventListeners } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { CallContext, OpenCalls } from "../../src/transport/grpc-call-context.js";

const CANCELLED = new ConnectError("client cancelled", Code.Canceled);

function callContext(calls: OpenCalls, deadline?: number): CallContext {
  return new CallContext(Health, Health.method.watch, "/grpc.health.v1.Health/Watch", new Headers({ a: "b" }), deadline, calls);
}

const openCalls = (shutdown = new AbortController()) => new OpenCalls(shutdown.signal);

describe("a gRPC call's handler context", () => {
  afterEach(() => vi.useRealTimers());

  it("aborts the signal a handler holds when the call ends, with the first reason given", () => {
    const context = callContext(openCalls());
    const signal = context.signal;
    expect(signal.aborted).toBe(false);
    context.end(CANCELLED);
    context.end(new Error("later"));
    expect([signal.aborted, signal.reason]).toEqual([true, CANCELLED]);
    expect(context.signal).toBe(signal);
  });

  it("gives a handler that asks only after the call ended a signal already aborted with that reason", () => {
    const context = callContext(openCalls());
    context.end(CANCELLED);
    expect([context.signal.aborted, context.signal.reason]).toEqual([true, CANCELLED]);
  });

  it("aborts at shutdown, and a call started after it is aborted from the start", () => {
    const shutdown = new AbortController();
    const calls = openCalls(shutdown);
    const open = callContext(calls);
    const signal = open.signal;
    shutdown.abort(new ConnectError("shutting down", Code.Unavailable));
    expect([signal.aborted, (signal.reason as ConnectError).code]).toEqual([true, Code.Unavailable]);
    const late = callContext(calls);
    expect([late.signal.aborted, (late.signal.reason as ConnectError).code]).toEqual([true, Code.Unavailable]);
  });

  it("holds a call among the open ones only while a handler holds its signal and the call lasts", () => {
    const shutdown = new AbortController();
    const calls = openCalls(shutdown);
    const unary = callContext(calls);
    unary.end(CANCELLED);
    const streaming = callContext(calls);
    const signal = streaming.signal;
    expect(calls.size).toBe(1);
    streaming.end(CANCELLED);
    expect(calls.size).toBe(0);
    shutdown.abort(new Error("shutting down"));
    expect(signal.reason).toBe(CANCELLED);
  });

  it("ends every open call at shutdown through one listener on the shutdown signal, however many are open", () => {
    const shutdown = new AbortController();
    const calls = openCalls(shutdown);
    const signals = Array.from({ length: 1_000 }, () => callContext(calls).signal);
    expect(getEventListeners(shutdown.signal, "abort")).toHaveLength(1);
    shutdown.abort(new ConnectError("shutting down", Code.Unavailable));
    expect(signals.every((s) => s.aborted && (s.reason as ConnectError).code === Code.Unavailable)).toBe(true);
    expect(calls.size).toBe(0);
  });

  it("aborts with DEADLINE_EXCEEDED when the caller's deadline passes, and counts the time left down to it", () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const context = callContext(openCalls(), 1_000_000 + 5_000);
    const signal = context.signal;
    vi.advanceTimersByTime(4_000);
    expect([signal.aborted, context.timeoutMs()]).toEqual([false, 1_000]);
    vi.advanceTimersByTime(1_000);
    expect([signal.aborted, (signal.reason as ConnectError).code]).toEqual([true, Code.DeadlineExceeded]);
  });

  it("stops the deadline's timer when the call ends first", () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const context = callContext(openCalls(), 1_000_000 + 5_000);
    void context.signal;
    expect(vi.getTimerCount()).toBe(1);
    context.end(CANCELLED);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("without a deadline, has no time limit", () => {
    const context = callContext(openCalls());
    expect(context.timeoutMs()).toBeUndefined();
    expect(context.requestHeader.get("a")).toBe("b");
    expect([context.protocolName, context.requestMethod, context.method.name]).toEqual(["grpc", "POST", "Watch"]);
  });
});
