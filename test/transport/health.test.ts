import { createClient, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { HealthRegistry, LIVENESS } from "../../src/transport/health.js";

describe("grpc.health.v1", () => {
  const registry = new HealthRegistry();
  registry.set("", Status.SERVING);
  const client = createClient(Health, createRouterTransport((router) => router.service(Health, registry.impl())));

  it("answers Check for known services and NOT_FOUND for others", async () => {
    expect((await client.check({ service: "" })).status).toBe(Status.SERVING);
    await expect(client.check({ service: "nope" })).rejects.toThrow(/unknown service/);
  });

  it("keeps the liveness service SERVING while readiness changes, until shutdown", async () => {
    const own = new HealthRegistry();
    const check = createClient(Health, createRouterTransport((router) => router.service(Health, own.impl()))).check;
    own.set("", Status.NOT_SERVING);
    expect([(await check({ service: "" })).status, (await check({ service: LIVENESS })).status]).toEqual([Status.NOT_SERVING, Status.SERVING]);
    own.shutdown();
    expect((await check({ service: LIVENESS })).status).toBe(Status.NOT_SERVING);
  });

  it("streams the current status on Watch, then every change, and NOT_SERVING on shutdown", async () => {
    const seen: Status[] = [];
    const abort = new AbortController();
    const stream = client.watch({ service: "" }, { signal: abort.signal });
    for await (const { status } of stream) {
      seen.push(status);
      if (seen.length === 1) registry.shutdown();
      if (seen.length === 2) break;
    }
    abort.abort();
    expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
  });
});
