import { Migrator } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_POLICIES, SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import { applyReceipt, recordSubmitted } from "../../src/service/attempt-lifecycle.js";
import { sendOtp } from "../../src/service/send-otp.js";
import { migrateToLatest, type Db } from "../../src/store/database.js";
import { migrationProvider } from "../../src/store/migrations/index.js";
import { findAttempt } from "../../src/store/repositories/attempts.js";
import { routeDeliveryStats } from "../../src/store/repositories/route-stats.js";
import { BACKENDS } from "../harness/databases.js";
import { FakeClock } from "../harness/fakes.js";
import { newTrace, sendCommand, serviceDeps } from "../harness/service-fixture.js";

const sms = SANDBOX_ROUTES.find((r) => r.channel === "sms")!;
const catalogue = { routes: [{ ...sms, id: "sms-backfilled" }, ...SANDBOX_ROUTES.filter((r) => r.channel !== "sms")], policies: DEFAULT_POLICIES };

describe.each(BACKENDS)("route outcome rollups on upgrade ($name)", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it("the migration counts the last hour's finished attempts, so route health reads the same as before the upgrade", async () => {
    // The migration looks back from the database's clock.
    const deps = serviceDeps(db, { catalogue, clock: new FakeClock(Date.now() - 120_000) });
    for (let i = 0; i < 5; i++) {
      const sent = await sendOtp(deps, { id: "upgrade" }, sendCommand(), newTrace());
      const attempt = (await findAttempt(db, sent.firstAttempt.id))!;
      await recordSubmitted(deps, attempt, { providerMessageId: `up-${attempt.id}`, delivered: false, firstPollAt: null });
      const at = new Date(deps.clock.now().getTime() + 2_500);
      await applyReceipt(deps, { provider: "sandbox", providerMessageId: `up-${attempt.id}`, status: i < 3 ? "DELIVERED" : "UNDELIVERED", occurredAt: at });
    }
    const since = new Date(deps.clock.now().getTime() - 3_600_000);
    const counted = await routeDeliveryStats(db, since);
    expect(counted).toEqual([
      { routeId: "sms-backfilled", finished: 5, delivered: 3, p50LatencyMs: 2_500, p95LatencyMs: 3_000, countries: new Map([["NL", { finished: 5, delivered: 3, p50LatencyMs: 2_500, p95LatencyMs: 3_000 }]]) },
    ]);

    const migrator = new Migrator({ db, provider: migrationProvider });
    // Back to the schema before the rollups (undoing the migrations after them too), then up again.
    const down = await migrator.migrateTo("20261123T1100-attempt-codes");
    expect(down.results?.map((r) => [r.migrationName, r.status])).toContainEqual(["20261123T1300-route-outcomes", "Success"]);
    expect(down.error).toBeUndefined();
    await migrateToLatest(db);
    // The backfill knows no countries: the route's own figures are the same, its countries start afresh.
    expect(await routeDeliveryStats(db, since)).toEqual([{ ...counted[0], countries: new Map() }]);
  });
});
