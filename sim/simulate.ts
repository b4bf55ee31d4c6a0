import { live, pump } from "./people.js";
import type { DeadlineVariant, RunRecord } from "./records.js";
import { buildReport, type Report } from "./report.js";
import { drawUsers, type Scenario } from "./scenario.js";
import { startStack } from "./stack.js";

/**
 * One run of the scenario against a fresh service with the variant's SMS
 * deadline: every user and the attack play out in real time, and the run
 * ends when the last user verified or gave up.
 */
export async function simulate(scenario: Scenario, variant: DeadlineVariant, pgAdminUrl: string, log: (line: string) => void = () => {}): Promise<{ record: RunRecord; report: Report }> {
  const stack = await startStack(scenario, variant, pgAdminUrl);
  try {
    const world = { scenario, client: stack.client, network: stack.network, now: stack.now };
    const users = drawUsers(scenario);
    log(`simulate: ${scenario.mode}, deadline ${variant}: ${users.length} users over ${scenario.arrivalsMs / 1000} s, attack from ${scenario.attack.startMs / 1000} s`);
    const progress = setInterval(() => log(`simulate: ${Math.round(stack.now() / 1000)} s`), 30_000);
    const [records, attack] = await Promise.all([Promise.all(users.map((user) => live(world, user))), pump(world)]).finally(() => clearInterval(progress));
    const degrading = scenario.smsRoutes.find((r) => r.degradesAtMs !== undefined);
    const backup = degrading && scenario.smsRoutes.find((r) => r.country === degrading.country && r !== degrading);
    const record: RunRecord = {
      mode: scenario.mode,
      seed: scenario.seed,
      variant,
      warmUpMs: scenario.warmUpMs,
      ...(degrading && backup ? { degrade: { atMs: degrading.degradesAtMs!, routeId: degrading.routeId, backupRouteId: backup.routeId } } : {}),
      users: records,
      attack,
      durationMs: stack.now(),
    };
    return { record, report: buildReport(record) };
  } finally {
    await stack.close();
  }
}
