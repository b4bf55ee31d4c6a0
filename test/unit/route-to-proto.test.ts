import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { RouteSchema } from "../../gen/otp/v1/otp_service_pb.js";
import { routeToProto } from "../../src/api/to-proto.js";
import { SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";

describe("a route in ListRoutes", () => {
  const route = SANDBOX_ROUTES.find((r) => r.channel === "sms")!;

  it("shows the health the planner uses: delivery rate, p50 and the p95 latencies that set `deadline: auto`", () => {
    const health = { deliveryRate: 0.9, samples: 40, healthy: true, p50LatencyMs: 1_500, p95LatencyMs: 3_000, p95LatencyMsByCountry: new Map([["NL", 2_000]]) };
    const message = create(RouteSchema, routeToProto(route, health));
    expect(message.health).toMatchObject({ deliveryRate: 0.9, healthy: true, p50DeliveryLatency: { seconds: 1n }, p95DeliveryLatency: { seconds: 3n } });
    expect(message.health!.p50DeliveryLatency!.nanos).toBe(500_000_000);
    expect(Object.keys(message.health!.p95DeliveryLatencyByCountry)).toEqual(["NL"]);
    expect(message.health!.p95DeliveryLatencyByCountry.NL).toMatchObject({ seconds: 2n, nanos: 0 });
  });

  it("reads as healthy with nothing measured: rate 1, no latencies", () => {
    const message = create(RouteSchema, routeToProto(route, undefined));
    expect(message.health).toMatchObject({ deliveryRate: 1, healthy: true, p95DeliveryLatencyByCountry: {} });
    expect([message.health!.p50DeliveryLatency, message.health!.p95DeliveryLatency]).toEqual([undefined, undefined]);
  });
});
