import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { describe, expect, inject, it } from "vitest";
import { createTestDatabase } from "../harness/postgres.js";

const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, "../../bin/otp-orchestrator.js");

describe("migrate role as a process", () => {
  it("creates the schema on an empty PostgreSQL database, and a second run changes nothing", async () => {
    const url = await createTestDatabase(inject("pgAdminUrl"));
    const env = { PATH: process.env.PATH ?? "", OTP_DATABASE_URL: url };
    const first = await run(process.execPath, [BIN, "migrate"], { env });
    expect(first.stderr).toContain("20261122T0400-initial-schema");
    const second = await run(process.execPath, [BIN, "migrate"], { env });
    expect(second.stderr).toContain('"applied":[]');
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ table_name: string }>("select table_name from information_schema.tables where table_schema = 'public' order by 1");
      expect(rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(["attempts", "delivery_events", "idempotency_keys", "outbox", "verifications"]));
    } finally {
      await client.end();
    }
  });

  it("unblock-prefix lifts an SMS-pumping flag in the database, and says so when the prefix was never flagged", async () => {
    const url = await createTestDatabase(inject("pgAdminUrl"));
    const env = { PATH: process.env.PATH ?? "", OTP_DATABASE_URL: url };
    await run(process.execPath, [BIN, "migrate"], { env });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(
        "insert into prefix_blocks (prefix, country, mode, reason, blocked_at, until) values ('+316555', 'NL', 'block', '30 sends and 0 approvals', now(), now() + interval '12 hours')",
      );
      const lifted = await run(process.execPath, [BIN, "unblock-prefix", "+316555"], { env });
      expect(lifted.stderr).toContain('"message":"prefix unblocked"');
      const { rows } = await client.query<{ active: boolean; released: boolean }>("select until > now() as active, released_at is not null as released from prefix_blocks");
      expect(rows).toEqual([{ active: false, released: true }]);

      const unknown = await run(process.execPath, [BIN, "unblock-prefix", "+316999"], { env }).catch((e: { code: number; stderr: string }) => e);
      expect(unknown).toMatchObject({ code: 1, stderr: "+316999 was never flagged as SMS pumping\n" });
      const malformed = await run(process.execPath, [BIN, "unblock-prefix", "316555"], { env }).catch((e: { code: number; stderr: string }) => e);
      expect(malformed).toMatchObject({ code: 2 });
      expect((malformed as { stderr: string }).stderr).toContain("unblock-prefix: expected a number prefix as flagged");
    } finally {
      await client.end();
    }
  });

  it("refuses to start serve without its required settings, naming the key", async () => {
    const failure = await run(process.execPath, [BIN, "serve"], { env: { PATH: process.env.PATH ?? "" } }).catch((e: { code: number; stderr: string }) => e);
    expect(failure).toMatchObject({ code: 2 });
    expect((failure as { stderr: string }).stderr).toContain("OTP_DATABASE_URL");
  });
});
