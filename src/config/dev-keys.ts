import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { CodeKeys } from "../domain/code-protector.js";

/**
 * `dev` keys: generated on first start and kept (mode 0600) beside the PGlite
 * data, so codes sent before a restart still check after it.
 */
export async function loadOrCreateDevKeys(dataDir: string): Promise<CodeKeys> {
  const file = path.join(dataDir, "dev-keys.json");
  try {
    const stored = JSON.parse(await readFile(file, "utf8")) as { hashKey: string; sealKey: string };
    return { hashKey: Buffer.from(stored.hashKey, "base64"), sealKey: Buffer.from(stored.sealKey, "base64") };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const keys = { hashKey: randomBytes(32), sealKey: randomBytes(32) };
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, JSON.stringify({ hashKey: keys.hashKey.toString("base64"), sealKey: keys.sealKey.toString("base64") }), {
    mode: 0o600,
  });
  return keys;
}
