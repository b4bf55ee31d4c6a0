import type { Migration, MigrationProvider } from "kysely";
import * as initialSchema from "./20261122T0400-initial-schema.js";
import * as sendIntentAndReceipts from "./20261122T0700-send-intent-and-receipts.js";
import * as ledgerEstimatesDeadlines from "./20261122T0800-ledger-estimates-deadlines.js";
import * as routeHealthIndexes from "./20261122T0900-route-health-indexes.js";
import * as retentionIndexes from "./20261123T0900-retention-indexes.js";
import * as guardKeys from "./20261123T1000-guard-keys.js";
import * as attemptCodes from "./20261123T1100-attempt-codes.js";
import * as routeOutcomes from "./20261123T1300-route-outcomes.js";
import * as estimateTrace from "./20261124T0100-estimate-trace.js";
import * as routeOutcomesCountry from "./20261203T1000-route-outcomes-country.js";
import * as conversionCounts from "./20261203T1100-conversion-counts.js";
import * as prefixBlocks from "./20261203T1300-prefix-blocks.js";
import * as counterAmounts from "./20261203T1500-counter-amounts.js";
import * as duplicateAttemptIndex from "./20261203T1700-duplicate-attempt-index.js";
import * as guardFailureTimes from "./20261207T0100-guard-failure-times.js";
import * as indexChoices from "./20261207T0400-index-choices.js";

/** Every migration, by name, in order. Explicit, so bundling or a stray file cannot change history. */
const migrations: Record<string, Migration> = {
  "20261122T0400-initial-schema": initialSchema,
  "20261122T0700-send-intent-and-receipts": sendIntentAndReceipts,
  "20261122T0800-ledger-estimates-deadlines": ledgerEstimatesDeadlines,
  "20261122T0900-route-health-indexes": routeHealthIndexes,
  "20261123T0900-retention-indexes": retentionIndexes,
  "20261123T1000-guard-keys": guardKeys,
  "20261123T1100-attempt-codes": attemptCodes,
  "20261123T1300-route-outcomes": routeOutcomes,
  "20261124T0100-estimate-trace": estimateTrace,
  "20261203T1000-route-outcomes-country": routeOutcomesCountry,
  "20261203T1100-conversion-counts": conversionCounts,
  "20261203T1300-prefix-blocks": prefixBlocks,
  "20261203T1500-counter-amounts": counterAmounts,
  "20261203T1700-duplicate-attempt-index": duplicateAttemptIndex,
  "20261207T0100-guard-failure-times": guardFailureTimes,
  "20261207T0400-index-choices": indexChoices,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
