#!/usr/bin/env node
/**
 * otp-orchestrator <serve|worker|migrate|dev> [--flags]
 * Parses configuration, starts one role, stops it cleanly on SIGTERM/SIGINT.
 */
import { startApp } from "./app.js";
import { ConfigError, loadConfig } from "./config/config.js";
import { migrateToLatest, openDatabase } from "./store/database.js";
import { errorFields, jsonLogger } from "./telemetry/logger.js";

async function main(): Promise<void> {
  const config = loadConfig(process.argv.slice(2), process.env);
  const log = jsonLogger(config.role);
  switch (config.role) {
    case "migrate": {
      const db = await openDatabase(config.database);
      const applied = await migrateToLatest(db);
      await db.destroy();
      log.info("migrations applied", { applied });
      return;
    }
    case "worker":
      throw new ConfigError("role worker: standalone workers are not built yet; serve and dev run the channel workers in process");
    case "serve":
    case "dev": {
      const app = await startApp(config, { log });
      const stop = async (signal: string) => {
        log.info("shutting down", { signal });
        await app.stop();
        process.exit(0);
      };
      process.once("SIGTERM", () => void stop("SIGTERM"));
      process.once("SIGINT", () => void stop("SIGINT"));
    }
  }
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`configuration error: ${error.message}\n`);
    process.exit(2);
  }
  jsonLogger("main").error("start-up failed", errorFields(error));
  process.exit(1);
});
