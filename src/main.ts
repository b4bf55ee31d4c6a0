#!/usr/bin/env node
/**
 * otp-orchestrator <serve|worker|migrate|dev> [--flags]
 * otp-orchestrator unblock-prefix <+prefix> [--flags]: lifts an SMS-pumping flag
 * Parses configuration, starts one role, stops it cleanly on SIGTERM/SIGINT.
 */
import { startApp } from "./app.js";
import { ConfigError, loadConfig } from "./config/config.js";
import { migrateToLatest, openDatabase } from "./store/database.js";
import { releasePrefixBlock } from "./store/repositories/prefix-blocks.js";
import { errorFields, jsonLogger, type Logger } from "./telemetry/logger.js";
import { shutdownTelemetry } from "./telemetry/sdk.js";
import { startWorker } from "./worker.js";

async function main(): Promise<void> {
  const config = loadConfig(process.argv.slice(2), process.env);
  const log = jsonLogger(config.role, config.logLevel);
  switch (config.role) {
    case "migrate": {
      const db = await openDatabase(config.database);
      const applied = await migrateToLatest(db);
      await db.destroy();
      log.info("migrations applied", { applied });
      await shutdownTelemetry();
      return;
    }
    case "unblock-prefix": {
      const db = await openDatabase(config.database);
      const released = await releasePrefixBlock(db, config.unblockPrefix!, new Date());
      await db.destroy();
      if (released === undefined) {
        process.stderr.write(`${config.unblockPrefix} was never flagged as SMS pumping\n`);
        process.exitCode = 1;
      } else {
        // Replicas read the flags every few seconds; the prefix's earlier sends no longer count against it.
        log.info("prefix unblocked", { prefix: released.prefix, country: released.country, reason: released.reason });
      }
      await shutdownTelemetry();
      return;
    }
    case "worker":
      stopOnSignal(await startWorker(config, { log }), log);
      return;
    case "serve":
    case "dev":
      stopOnSignal(await startApp(config, { log }), log);
  }
}

function stopOnSignal(running: { stop(): Promise<void> }, log: Logger): void {
  const stop = async (signal: string) => {
    log.info("shutting down", { signal });
    await running.stop();
    // The spans of the last calls and receipts are exported before the process ends.
    await shutdownTelemetry();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`configuration error: ${error.message}\n`);
    process.exit(2);
  }
  jsonLogger("main").error("start-up failed", errorFields(error));
  process.exit(1);
});
