import { execFileSync } from "node:child_process";
import path from "node:path";
import type {} from "vitest";
import type { TestProject } from "vitest/node";
import { startNats } from "./nats.js";
import { startPostgres } from "./postgres.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Superuser URL of the shared throwaway PostgreSQL server. */
    pgAdminUrl: string;
    /** URL of the shared throwaway nats-server (JetStream on). */
    natsUrl: string;
  }
}

/**
 * Builds the service's bundles in dist/ (a second or two), so the process
 * tests run the binary as it ships, built from the source under test. Then one PostgreSQL and one nats-server for the whole
 * run; each test file makes its own database.
 */
export default async function setup(project: TestProject) {
  buildDist();
  const [postgres, nats] = await Promise.all([startPostgres(), startNats()]);
  project.provide("pgAdminUrl", postgres.adminUrl);
  project.provide("natsUrl", nats.url);
  return async () => {
    await Promise.all([postgres.stop(), nats.stop()]);
  };
}

function buildDist(): void {
  const root = path.resolve(import.meta.dirname, "../..");
  execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: root, stdio: "inherit" });
}
