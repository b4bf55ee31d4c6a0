import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

/** CPU time (ms, user + system) used so far by each group of processes on this box. */
export type CpuSample = ReadonlyMap<string, number>;

const TICK_MS = 10; // USER_HZ is 100 on Linux

/**
 * Samples the CPU time of every process on the box, grouped: `serve` and
 * `worker` (by their command line), the load generator, postgres,
 * nats-server, this bench process, and everything else. Linux only (/proc).
 */
export function sampleCpu(): CpuSample {
  const processes = new Map<number, { readonly parent: number; readonly cmdline: string; readonly ms: number }>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    let cmdline: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
    } catch {
      continue; // gone meanwhile
    }
    // Fields after the command name (which may hold spaces) start after the last ')': the parent's pid, then
    // utime and stime, then cutime and cstime: the children it has reaped. A PostgreSQL backend that ends during a
    // measure (an autovacuum worker, a pool's idle connection) takes its CPU out of /proc; the postmaster's cutime
    // gets it back, so PostgreSQL's total never goes down (without it, its share once read -11.6 ms per call).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ms = (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * TICK_MS;
    processes.set(Number(entry), { parent: Number(fields[1]), cmdline, ms });
  }
  const groups = new Map<string, number>();
  for (const [pid, { parent, cmdline, ms }] of processes) {
    // An ended process not yet reaped (and a kernel thread) has no command line: it is counted with its parent, as
    // its CPU will be once reaped. Counted as "other", a backend ending during a measure moved its whole life's
    // CPU from "other" to PostgreSQL (once -11.7 and +12 ms per flow).
    const group = groupOf(pid, cmdline === "" ? (processes.get(parent)?.cmdline ?? "") : cmdline);
    groups.set(group, (groups.get(group) ?? 0) + ms);
  }
  for (const [name, ms] of boxCpu()) groups.set(name, ms);
  return groups;
}

/**
 * The box's own count, for checking the per-process split against: its CPU
 * busy (user, nice, system, irq, softirq) and the time the hypervisor gave to
 * other guests while this one wanted to run (steal), both summed over cores.
 */
function boxCpu(): ReadonlyMap<string, number> {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  return new Map([
    ["box busy", (user! + nice! + system! + irq! + softirq!) * TICK_MS],
    ["box stolen", steal! * TICK_MS],
  ]);
}

function groupOf(pid: number, cmdline: string): string {
  if (pid === process.pid) return "bench process";
  if (cmdline.includes("otp-orchestrator.js serve")) return "serve";
  if (cmdline.includes("otp-orchestrator.js worker")) return "worker";
  if (cmdline.includes("bench/load-process.ts")) return "load generator";
  if (/(^|\/)postgres[: ]/.test(cmdline)) return "postgres";
  if (cmdline.startsWith("nats-server")) return "nats-server";
  return "other";
}

/** The bench process is the SMS API peer (and the OTLP sink, the raw PostgreSQL baseline's client). */
export const CPU_GROUPS = ["serve", "worker", "postgres", "nats-server", "load generator", "bench process", "other"] as const;
/** The box's figures beside the groups (see boxCpu). */
export const BOX_FIGURES = ["box busy", "box stolen"] as const;

/** CPU ms per call of each group between two samples. */
export function cpuPerCall(before: CpuSample, after: CpuSample, calls: number): Record<string, number> {
  const perCall: Record<string, number> = {};
  for (const group of [...CPU_GROUPS, ...BOX_FIGURES]) perCall[group] = Math.round((100 * ((after.get(group) ?? 0) - (before.get(group) ?? 0))) / Math.max(1, calls)) / 100;
  return perCall;
}

/**
 * How busy the box was between two samples `elapsedMs` apart: its busy CPU
 * (the kernel's count) over all its cores could give, in percent. Latency at
 * a fixed rate follows it more than the rate: a call waits for a core at
 * every process it crosses.
 */
export function boxBusyPercent(before: CpuSample, after: CpuSample, elapsedMs: number): number {
  const busyMs = (after.get("box busy") ?? 0) - (before.get("box busy") ?? 0);
  return Math.round((100 * busyMs) / (Math.max(1, elapsedMs) * availableParallelism()));
}
