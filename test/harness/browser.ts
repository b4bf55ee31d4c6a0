import { existsSync } from "node:fs";
import path from "node:path";
import { chromium, type Browser } from "playwright-core";

/** Debian's Chromium (package `chromium`, installed by scripts/install-test-deps.sh); CHROMIUM_PATH overrides. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/**
 * Headless Chromium for page tests, with a new empty profile (playwright makes one per launch). It makes no connection of its own (no component
 * updates, sync or background networking): the only traffic is the page's, to loopback.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found (install the chromium package; .ci/run does, or set CHROMIUM_PATH)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Where page tests keep their screenshots (not committed): test/artifacts/. */
export function artifactPath(name: string): string {
  return path.join(import.meta.dirname, "..", "artifacts", name);
}
