/**
 * The load generator's own process (forked by bench/load-generator.ts): gRPC
 * clients of one `serve` over several HTTP/2 connections, running the measures
 * the bench asks for over IPC and answering with their results. In its own
 * process so that its event loop and garbage collector share nothing with the
 * bench's SMS peer, OTLP sink and bookkeeping: the latencies it reports are
 * the client's and the service's, not a neighbour's stall.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { DeliveryEventKind } from "../gen/otp/v1/common_pb.js";
import { OtpService } from "../gen/otp/v1/otp_service_pb.js";
import { atRate, clients, percentiles, saturate, type LoadResult } from "./load.js";
import type { Call, LoadReply, LoadRequest, Measure } from "./load-protocol.js";

const port = Number(process.env.LOAD_GRPC_PORT);
const connections = Number(process.env.LOAD_CONNECTIONS);
/** A phone prefix of this generator's own (`+3165`): unique numbers, spread over ranges of 100 as real traffic is. */
const phonePrefix = process.env.LOAD_PHONE_PREFIX ?? "+3165";
const tokenOf = (caller: number) => `bench-token-${caller}`;
const headersOf = (caller: number) => ({ authorization: `Bearer ${tokenOf(caller)}` });

const health = clients(Health, port, connections);
const otp = clients(OtpService, port, connections);
/** Every verification this process sent and who sent it: what VerifyOtp is asked about. */
const sent: Array<[string, number]> = [];
let phone = 0;
// 7,919 is prime to 10^7: consecutive sends fall in different ranges, so the number-range window is not one hot row.
const nextPhone = () => `${phonePrefix}${String((++phone * 7_919) % 10_000_000).padStart(7, "0")}`;
let nextVerify = 0;
/**
 * Each complete flow of the current measure: ms from its SendOtp call to the
 * provider's answer, which the worker records as the attempt's ATTEMPT_SUBMITTED
 * (its time is the server's clock, the same as this process's on one box).
 */
let toProvider: number[] = [];

/** One call of `call`'s kind; `index` is the caller slot (saturation) or the call's number (fixed rate). */
function callOf(call: Call): (index: number) => Promise<unknown> {
  switch (call.kind) {
    case "check":
      return (i) => health[i % connections]!.check({});
    case "send":
      return async (i) => {
        const caller = i % Math.max(1, call.callers);
        const options = call.callers > 0 ? { headers: headersOf(caller) } : {};
        const reply = await otp[i % connections]!.sendOtp({ destination: { phone: nextPhone() } }, options);
        sent.push([reply.verificationId, caller]);
      };
    case "verify-wrong":
      return (i) => {
        if (sent.length === 0) throw new Error("VerifyOtp needs sends first");
        const [verificationId, caller] = sent[nextVerify++ % sent.length]!;
        return otp[i % connections]!.verifyOtp({ verificationId, code: "000000" }, { headers: headersOf(caller) });
      };
    case "verify-right": {
      const callerOf = new Map(sent);
      let next = 0;
      return (i) => {
        const [verificationId, code] = call.codes[next++] ?? [];
        if (verificationId === undefined) throw new Error("VerifyOtp: more calls than codes");
        return otp[i % connections]!.verifyOtp({ verificationId, code }, { headers: headersOf(callerOf.get(verificationId)!) });
      };
    }
    case "flow":
      return async (i) => {
        const client = otp[i % connections]!;
        const caller = i % call.callers;
        const calledAt = Date.now();
        const reply = await client.sendOtp({ destination: { phone: nextPhone() } }, { headers: headersOf(caller) });
        for await (const message of client.watchDelivery({ verificationId: reply.verificationId }, { headers: headersOf(caller), timeoutMs: 30_000 })) {
          const { kind, occurredAt } = message.event ?? {};
          if (kind === DeliveryEventKind.ATTEMPT_SUBMITTED && occurredAt) toProvider.push(timestampDate(occurredAt).getTime() - calledAt);
          if (kind === DeliveryEventKind.ATTEMPT_DELIVERED) return;
        }
        throw new Error(`stream of ${reply.verificationId} ended without DELIVERED`);
      };
  }
}

async function run(measure: Measure): Promise<LoadResult> {
  const call = callOf(measure.call);
  toProvider = [];
  const result = await (measure.mode === "saturate"
    ? saturate(measure.name, measure.seconds, measure.concurrency, call)
    : atRate(measure.name, measure.rate, measure.seconds, call));
  // At a fixed rate each call starts when due; at saturation a flow's time is mostly its wait for a slot.
  return measure.call.kind === "flow" && measure.mode === "rate" ? { toProvider: percentiles(toProvider), ...result } : result;
}

process.on("message", (request: LoadRequest) => {
  const answer = request.measure ? run(request.measure) : Promise.resolve(undefined);
  answer.then(
    (result) => process.send!({ id: request.id, result, sent: sent.length } satisfies LoadReply),
    (error: unknown) => process.send!({ id: request.id, error: String(error), sent: sent.length } satisfies LoadReply),
  );
});
// The parent's end is ours: its IPC channel closing means the bench is over (or died).
process.on("disconnect", () => process.exit());
process.send!({ id: 0, sent: 0 } satisfies LoadReply);
