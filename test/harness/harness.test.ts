import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { describe, expect, inject, it } from "vitest";

// The suite runs on real servers, never skipped: if the harness cannot give us
// PostgreSQL and a JetStream-enabled nats-server, this fails loudly.
describe("test harness", () => {
  it("runs a real PostgreSQL server", async () => {
    const client = new pg.Client({ connectionString: inject("pgAdminUrl") });
    await client.connect();
    try {
      const { rows } = await client.query<{ version: string }>("select version()");
      expect(rows[0]?.version).toMatch(/^PostgreSQL \d+/);
    } finally {
      await client.end();
    }
  });

  it("runs a real nats-server with JetStream enabled", async () => {
    const nc = await connect({ servers: inject("natsUrl") });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.getAccountInfo();
      expect(info.limits).toBeDefined();
    } finally {
      await nc.close();
    }
  });
});
