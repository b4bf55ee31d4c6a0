import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CircuitState, RouteSchema } from "../../gen/otp/v1/otp_service_pb.js";
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

  it("shows each country's conversion, recent against baseline, and the circuit it set", () => {
    const retryAt = new Date("2026-12-03T12:05:00Z");
    const conversion = new Map([
      ["NL", { recent: { sent: 40, approved: 10 }, baseline: { sent: 1_000, approved: 880 }, circuit: { state: "open" as const, reason: "conversion 25 %", retryAt }, admittedShare: 0 }],
      ["BE", { recent: { sent: 0, approved: 0 }, baseline: { sent: 30, approved: 27 }, circuit: { state: "closed" as const }, admittedShare: 1 }],
    ]);
    const message = create(RouteSchema, routeToProto(route, { deliveryRate: 1, samples: 0, healthy: true, conversion }));
    expect(message.health!.conversionByCountry.NL).toMatchObject({
      recentSent: 40n,
      recentApproved: 10n,
      recentConversion: 0.25,
      baselineSent: 1_000n,
      baselineApproved: 880n,
      baselineConversion: 0.88,
      state: CircuitState.OPEN,
      reason: "conversion 25 %",
      retryAt: { seconds: BigInt(retryAt.getTime() / 1000) },
    });
    expect(message.health!.conversionByCountry.BE).toMatchObject({ recentConversion: 0, baselineConversion: 0.9, state: CircuitState.CLOSED, reason: "" });
    expect(message.health!.conversionByCountry.BE!.retryAt).toBeUndefined();
  });
});
