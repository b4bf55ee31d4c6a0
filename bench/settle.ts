import { execFile } from "node:child_process";
import { promisify } from "node:util";
import pg from "pg";

/**
 * Has the box write out what earlier measures and set-ups wrote, before a
 * measure starts: PostgreSQL's dirty buffers (CHECKPOINT), then every dirty
 * page of the kernel's cache (`sync`).
 *
 * The harness's PostgreSQL runs with fsync off, so nothing it writes reaches
 * the disk until the kernel writes back pages that have been dirty for 30 s
 * (vm.dirty_expire_centisecs). After a section that wrote gigabytes (the
 * 100,000 plan copies and their drain) that came as bursts of up to 1 GB in
 * about a second, 30 s later, in the middle of the next measure: every
 * process stalled 100–200 ms, and the WatchDelivery streams' p99 went from
 * 50 to 220 ms (BENCHMARKS.md (25)). A measure settled first shows its own
 * writes' cost, not an earlier section's.
 */
export async function settleWrites(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query("checkpoint");
  } finally {
    await client.end();
  }
  await promisify(execFile)("sync");
}
