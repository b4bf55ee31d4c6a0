import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { waitFor } from "../test/harness/free-port.js";
import { cpuPerCall, sampleCpu } from "./cpu.js";
import { percentiles, type LoadResult } from "./load.js";
import { settleWrites } from "./settle.js";

/**
 * Copies of `template` (an SMS → email plan) as verifications whose SMS
 * attempt was submitted without a receipt and whose step is due, made in SQL
 * (a backlog of 100k is not worth 100k SendOtp calls). Each measure starts
 * once the copies are written out (bench/settle.ts).
 */
export class PlanCopies {
  private readonly client: pg.Client;
  private made = 0;

  constructor(
    private readonly url: string,
    private readonly template: string,
  ) {
    this.client = new pg.Client({ connectionString: url });
  }

  async open(): Promise<void> {
    await this.client.connect();
  }

  async close(): Promise<void> {
    await this.client.end();
  }

  /** `count` more copies, their SMS step's deadline (from the template's plan) reached at the database's now(). */
  async make(count: number, settled = false): Promise<void> {
    const first = this.made + 1;
    this.made += count;
    await this.copy("plan", first, this.made, "'expires_at', now() + interval '10 minutes', 'next_step_at', now()", settled);
  }

  /**
   * Makes `count` copies whose code expired at the database's now() (their SMS
   * was sent, nobody typed the code), and times the expiry sweep until it has
   * ended them all (bounded: ten minutes).
   */
  async expire(count: number): Promise<{ expireMs: number; cpuMsPerExpiry: Record<string, number> }> {
    await this.copy("expired", 1, count, "'expires_at', now(), 'next_step_at', null", true);
    const cpuBefore = sampleCpu();
    const started = performance.now();
    await waitFor("the expiry sweep to end every expired copy", async () => !(await this.anyRow("verifications where status = 'PENDING' and expires_at <= now() and id like 'vrf_expired_%'")), 600_000);
    return { expireMs: performance.now() - started, cpuMsPerExpiry: cpuPerCall(cpuBefore, sampleCpu(), count) };
  }

  /**
   * Copies `first`..`last` of the template and its SMS attempt (submitted, no receipt), named `vrf_<kind>_<n>`, with
   * `fields` (SQL) set. A `settled` batch, which the measure after it starts from, is ready before it commits (and
   * so before it falls due): with statistics, and written out (bench/settle.ts; the pages of the open transaction's
   * rows are written like any other).
   *
   * Statistics, because the copies arrive at once, where traffic would have brought them over minutes with
   * autovacuum's ANALYZE along the way: without them the planner took the scheduler's read of 50 verifications'
   * attempts for a quarter of the table and scanned it, 100 ms a batch (BENCHMARKS.md (24)). ANALYZE in the copies'
   * transaction samples their rows, and its statistics commit with them.
   */
  private async copy(kind: string, first: number, last: number, fields: string, settled = false): Promise<void> {
    await this.client.query("begin");
    // The record is built in a lateral join: `select (f(…)).*` would call f once per column of the table.
    await this.client.query(
      `insert into verifications select r.*
       from verifications v, generate_series($2::int, $3::int) g,
         jsonb_populate_record(null::verifications, to_jsonb(v) || jsonb_build_object(
           'id', 'vrf_${kind}_' || g, 'current_step', 0, 'created_at', now() - interval '1 minute', ${fields})) r
       where v.id = $1`,
      [this.template, first, last],
    );
    await this.client.query(
      `insert into attempts select r.*
       from attempts a join verifications v on v.id = a.verification_id, generate_series($2::int, $3::int) g,
         jsonb_populate_record(null::attempts, to_jsonb(a) || jsonb_build_object(
           'id', 'att_${kind}_' || g, 'verification_id', 'vrf_${kind}_' || g, 'status', 'SUBMITTED', 'provider_message_id', '${kind}-' || g,
           'created_at', now() - make_interval(secs => (v.plan->0->>'deadlineMs')::int / 1000.0), 'submitted_at', now() - interval '10 seconds')) r
       where a.verification_id = $1 and a.step_index = 0`,
      [this.template, first, last],
    );
    if (settled) {
      await this.client.query("analyze verifications, attempts");
      await settleWrites(this.url);
    }
    await this.client.query("commit");
  }

  /** Takes every copy off the scheduler's list (and the expiry sweep's): nothing more of theirs falls due. */
  async retire(): Promise<void> {
    await this.client.query("update verifications set next_step_at = null, expires_at = now() + interval '1 day' where id like 'vrf_plan_%'");
  }

  /**
   * Whether `from` (a table and its condition) has a row: what the waits poll,
   * each through the index of the loop it measures, and only to the first row
   * left. Asked every 100 ms, a scan of the whole table took most of a core
   * from the scheduler it measures, and a count of the due plans 80-230 ms
   * each at the drain's start, a fifth of the box (BENCHMARKS.md (24)).
   */
  private async anyRow(from: string, values: unknown[] = []): Promise<boolean> {
    const { rows } = await this.client.query<{ found: boolean }>(`select exists (select 1 from ${from}) as found`, values);
    return rows[0]!.found;
  }

  /**
   * Makes `plans` due at once, and times the scheduler until none is left,
   * and the outbox until every message they made is published (bounded: ten
   * minutes each); the CPU per plan is the whole box's until then.
   */
  async drain(plans: number): Promise<{ drainMs: number; publishedMs: number; messages: number; cpuMsPerPlan: Record<string, number> }> {
    const { rows: last } = await this.client.query<{ id: string }>("select coalesce(max(id), 0) as id from outbox");
    await this.make(plans, true);
    const cpuBefore = sampleCpu();
    const started = performance.now();
    await this.untilNoneDue(600_000);
    const drainMs = performance.now() - started;
    const { rows } = await this.client.query<{ n: string }>("select count(*) as n from outbox where created_at >= now() - make_interval(secs => $1::float8 / 1000)", [drainMs + 1_000]);
    await waitFor("the outbox to publish the drain's messages", async () => !(await this.anyRow("outbox where published_at is null and id > $1", [last[0]!.id])), 600_000);
    return { drainMs, publishedMs: performance.now() - started, messages: Number(rows[0]!.n), cpuMsPerPlan: cpuPerCall(cpuBefore, sampleCpu(), plans) };
  }

  /**
   * Makes plans fall due at `perSecond` for `seconds` (a batch every 100 ms),
   * then reports how late each one's next attempt was queued after its deadline.
   */
  async lateness(perSecond: number, seconds: number): Promise<LoadResult> {
    await settleWrites(this.url);
    const from = this.made + 1;
    const started = performance.now();
    const ticks = seconds * 10;
    for (let tick = 0; tick < ticks; tick++) {
      const due = started + tick * 100;
      if (due > performance.now()) await sleep(due - performance.now());
      await this.make(perSecond / 10);
    }
    await this.untilNoneDue(120_000);
    const { rows } = await this.client.query<{ late_ms: number }>(
      `select extract(epoch from (e.created_at - s.created_at)) * 1000 - (v.plan->0->>'deadlineMs')::int as late_ms
       from verifications v join attempts s on s.verification_id = v.id and s.step_index = 0 join attempts e on e.verification_id = v.id and e.step_index = 1
       where v.id in (select 'vrf_plan_' || g from generate_series($1::int, $2::int) g)`,
      [from, this.made],
    );
    const late = rows.map((r) => Number(r.late_ms));
    return { name: `fallback scheduler: lateness of the next step at ${perSecond} plans due per second`, perSecond, ...percentiles(late), errors: this.made - from + 1 - late.length };
  }

  /** Until no copy is waiting for its email step. */
  private async untilNoneDue(withinMs: number): Promise<void> {
    await waitFor("the scheduler to move every due copy on", async () => !(await this.anyRow("verifications where status = 'PENDING' and next_step_at <= now() and current_step = 0 and id like 'vrf_plan_%'")), withinMs);
  }
}
