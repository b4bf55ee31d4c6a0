import { setMaxListeners } from "node:events";
import { createGrpcTransport, createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeliveryEventKind } from "../../gen/otp/v1/common_pb.js";
import { VerifyStatus } from "../../gen/otp/v1/otp_service_pb.js";
import type { RunningApp } from "../../src/app.js";
import { auth, codeFromInbox, otpClient, startTestApp, type OtpClient } from "../harness/app-fixture.js";
import { waitFor } from "../harness/free-port.js";
import { uniquePhone } from "../harness/service-fixture.js";

const VERIFICATIONS = 10;
const WATCHERS_EACH = 100;

/** One process, one bus subscription, a thousand WatchDelivery streams on both ports. */
describe("1,000 concurrent watchers on one serve process", () => {
  let app: RunningApp;
  let grpcClient: OtpClient;
  let connectClient: OtpClient;
  beforeAll(async () => {
    app = await startTestApp();
    grpcClient = otpClient(createGrpcTransport({ baseUrl: `http://127.0.0.1:${app.grpcPort}` }));
    connectClient = otpClient(createConnectTransport({ baseUrl: `http://127.0.0.1:${app.httpPort}`, httpVersion: "2" }));
  });
  afterAll(async () => {
    await app?.stop();
  });

  it("each watcher sees its verification's events once, in order, and ends after VERIFIED", async () => {
    const sent = await Promise.all(Array.from({ length: VERIFICATIONS }, () => grpcClient.sendOtp({ destination: { phone: uniquePhone() } }, auth("checkout"))));
    const ids = sent.map((s) => s.verificationId);
    const codes = await Promise.all(ids.map((id) => codeFromInbox(app, id)));
    const signal = AbortSignal.timeout(60_000);
    setMaxListeners(0, signal); // one deadline for every stream of the test
    const watch = async (verificationId: string, client: OtpClient) => {
      const sequences: bigint[] = [];
      let lastKind: DeliveryEventKind | undefined;
      for await (const { event } of client.watchDelivery({ verificationId }, { ...auth("checkout"), signal })) {
        if (event === undefined) continue;
        sequences.push(event.sequence);
        lastKind = event.kind;
      }
      return { sequences, lastKind };
    };
    const watchers = ids.flatMap((id, i) => Array.from({ length: WATCHERS_EACH }, (_, w) => watch(id, w % 2 === 0 ? grpcClient : connectClient)).map((p) => p.then((r) => ({ ...r, i }))));
    // Every stream is registered with the process's one event subscription before the codes are used.
    await waitFor("1,000 watchers to be listening", async () => app.core.events.watcherCount === VERIFICATIONS * WATCHERS_EACH, 30_000, 50);

    const verdicts = await Promise.all(ids.map((verificationId, i) => grpcClient.verifyOtp({ verificationId, code: codes[i]! }, auth("checkout"))));
    expect(verdicts.every((v) => v.status === VerifyStatus.APPROVED)).toBe(true);

    const results = await Promise.all(watchers);
    expect(results).toHaveLength(VERIFICATIONS * WATCHERS_EACH);
    for (const { sequences, lastKind } of results) {
      expect(lastKind).toBe(DeliveryEventKind.VERIFIED);
      expect(sequences).toEqual(sequences.map((_, k) => BigInt(k + 1)));
    }
    await waitFor("watchers to be released", async () => app.core.events.watcherCount === 0, 10_000, 50);
  });
});
