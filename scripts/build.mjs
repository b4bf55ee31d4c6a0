/**
 * npm run build: src/ and gen/ → dist/, what bin/otp-orchestrator.js runs.
 *
 * One bundle per entry point (esbuild; `tsc --noEmit` checks the types in `npm test`). Start-up time is mostly
 * Node's module loader: compiled file by file, `serve` loaded 1,300 files, kysely alone 264 of them, in about 1 s on
 * two cores. Bundled it loads a few hundred, in about 0.6 s.
 *
 * Packages stay outside the bundle when something must find them as themselves: OpenTelemetry's instrumentations
 * patch pg, grpc-js and pino as they load (a bundled copy would go untraced), the SDK shares @opentelemetry/api's
 * one instance, and PGlite reads its WebAssembly next to its own module.
 */
import { cpSync, rmSync } from "node:fs";
import path from "node:path";
import { build } from "esbuild";

const ROOT = path.resolve(import.meta.dirname, "..");
const DIST = path.join(ROOT, "dist");

const EXTERNAL = ["@opentelemetry/*", "pg", "@grpc/grpc-js", "pino", "@electric-sql/pglite"];

rmSync(DIST, { recursive: true, force: true });
await build({
  absWorkingDir: ROOT,
  // The telemetry entry runs first (instrumentations in place before pg and grpc-js load); both share one chunk of
  // the SDK's state (splitting), so the application stops the SDK that the first entry started.
  entryPoints: { main: "src/main.ts", "telemetry-start": "src/telemetry/start.ts" },
  outdir: DIST,
  bundle: true,
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  format: "esm",
  platform: "node",
  target: "node20",
  external: EXTERNAL,
  sourcemap: true,
  // CommonJS packages inside the bundle (nodemailer, tweetnacl…) require Node's built-in modules.
  banner: { js: 'import { createRequire as __bundleRequire } from "node:module"; const require = __bundleRequire(import.meta.url);' },
  logLevel: "warning",
});
// The dashboard's page and script, read at run time from beside the bundle (src/dashboard/dashboard-pages.ts).
cpSync(path.join(ROOT, "src/dashboard/assets"), path.join(DIST, "assets"), { recursive: true });
