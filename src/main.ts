#!/usr/bin/env node
/**
 * otp-orchestrator <serve|worker|migrate|dev> [--flags]
 * Parses configuration, starts one role, stops it cleanly on SIGTERM/SIGINT.
 */
import { startApp } from "./app.js";
import { ConfigError, loadConfig } from "./config/config.js";
import { migrateToLatest, openDatabase } from "./store/database.js";
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
