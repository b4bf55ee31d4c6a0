import { randomBytes } from "node:crypto";
import type { Clock, IdGenerator, RandomSource } from "../../src/domain/ports.js";
import type { Logger } from "../../src/telemetry/logger.js";

/** A clock that moves only when told to. */
export class FakeClock implements Clock {
  private current: number;
  constructor(start = Date.parse("2026-11-22T10:00:00Z")) {
    this.current = start;
  }
  now(): Date {
    return new Date(this.current);
  }
  advance(ms: number): void {
    this.current += ms;
  }
}

/** Ids numbered in order, readable in failures: vrf_1, att_2 … */
export function sequentialIds(): IdGenerator {
  let n = 0;
  return { next: (prefix) => `${prefix}_${++n}` };
}

/** Returns the given integers in turn (then 0s); bytes stay random. */
export function scriptedRandom(...ints: number[]): RandomSource & { calls: number[] } {
  const calls: number[] = [];
  return {
    calls,
    int: (max) => {
      calls.push(max);
      return ints.shift() ?? 0;
    },
    bytes: (n) => randomBytes(n),
  };
}

/** A logger that keeps its lines, for tests that assert what an operator is told. */
export function recordingLogger(): Logger & { readonly lines: { level: string; message: string; fields?: Record<string, unknown> }[] } {
  const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const keep = (level: string) => (message: string, fields?: Record<string, unknown>) => void lines.push({ level, message, ...(fields ? { fields } : {}) });
  return { lines, info: keep("info"), warn: keep("warn"), error: keep("error") };
}
