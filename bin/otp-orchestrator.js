#!/usr/bin/env node
// Runs the compiled service (`npm run build` writes dist/): no compiler at run time, no writable /tmp needed.
// Development runs the TypeScript itself: `npm run dev`.
import { existsSync } from "node:fs";

const entry = new URL("../dist/main.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write("otp-orchestrator: dist/ is missing; run `npm run build` first\n");
  process.exit(1);
}
// OpenTelemetry first (when OTEL_* asks for it): instrumentations patch libraries as they load.
await import(new URL("../dist/telemetry-start.js", import.meta.url).href);
await import(entry.href);
