/**
 * npm run simulate [-- --ci] [-- --users=N] [-- --seed=S] [-- --variants=fixed,auto] [-- --out=DIR]
 *
 * The delivery-outcome simulation of issue #13: `serve` and `worker` as
 * processes on real PostgreSQL and nats-server, providers on loopback playing
 * scripted networks (sim/scenario.ts), simulated people who hold a code when
 * it reaches them and type it, and an SMS-pumping attack. Each variant runs on
 * a fresh database with the same seed: `fixed` (the SMS step waits 15 s for
 * its receipt, as before adaptive deadlines) and `auto`. Writes
 * `<out>/simulation-<mode>.json` and `.md`, prints the Markdown, and exits 1
 * when a target of the `auto` run is missed.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { startPostgres } from "../test/harness/postgres.js";
import type { DeadlineVariant } from "./records.js";
import { renderMarkdown, type Report } from "./report.js";
import { scenario } from "./scenario.js";
import { simulate } from "./simulate.js";

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const mode = process.argv.includes("--ci") ? "ci" : "full";
const seed = Number(arg("seed") ?? 13);
const users = arg("users") === undefined ? undefined : Number(arg("users"));
const variants = (arg("variants") ?? (mode === "ci" ? "auto" : "fixed,auto")).split(",") as DeadlineVariant[];
const out = path.resolve(arg("out") ?? "sim/results");
if (variants.some((v) => v !== "auto" && v !== "fixed")) throw new Error("--variants: auto and/or fixed");

async function main(): Promise<void> {
  const postgres = await startPostgres();
  const reports: Report[] = [];
  const records = [];
  try {
    for (const variant of variants) {
      const { record, report } = await simulate(scenario(mode, seed, users), variant, postgres.adminUrl, (line) => process.stderr.write(`${line}\n`));
      records.push(record);
      reports.push(report);
    }
  } finally {
    await postgres.stop();
  }
  const markdown = renderMarkdown(reports);
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, `simulation-${mode}.json`), `${JSON.stringify({ reports, records }, null, 2)}\n`);
  writeFileSync(path.join(out, `simulation-${mode}.md`), markdown);
  process.stdout.write(markdown);
  const auto = reports.find((r) => r.variant === "auto");
  process.exitCode = auto && auto.targets.some((t) => !t.met) ? 1 : 0;
}

await main();
