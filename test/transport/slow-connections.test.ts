import net from "node:net";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeliveryEventKind } from "../../gen/otp/v1/common_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import type { RunningApp } from "../../src/app.js";
import { auth, codeFromInbox, otpClient, startTestApp } from "../harness/app-fixture.js";
import { uniquePhone } from "../harness/service-fixture.js";

const H2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SLOW_CLIENTS = 20;

/** Opens a socket that sends `bytes` and then nothing; resolves when the server has closed it (or never). */
function slowClient(port: number, bytes: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(bytes));
    socket.on("error", () => undefined);
    socket.on("data", () => undefined);
    socket.once("close", () => resolve());
  });
}

/** Resolves true when every promise settled within `ms`, false otherwise. */
async function allWithin(promises: Array<Promise<void>>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([Promise.all(promises).then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  return result;
}

describe("slow and idle connections", () => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await startTestApp({ watchKeepAliveMs: 300, connections: { headersTimeoutMs: 500, requestTimeoutMs: 1_000, idleTimeoutMs: 1_500, keepAliveTimeoutMs: 500 } });
  });
  afterAll(async () => {
    await app?.stop();
  });

  const kinds: Array<[string, "http" | "grpc", string]> = [
    ["a silent socket", "http", ""],
    ["half an HTTP/1 request", "http", "POST /otp.v1.OtpService/SendOtp HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"],
    ["an HTTP/2 preface and nothing more", "http", H2_PREFACE],
    ["a silent socket", "grpc", ""],
    ["an HTTP/2 preface and nothing more", "grpc", H2_PREFACE],
  ];

  it.each(kinds)("closes %s on the %s port within its timeout, while real calls go through", async (_, which, bytes) => {
    const port = which === "http" ? app.httpPort : app.grpcPort;
    const closed = Array.from({ length: SLOW_CLIENTS }, () => slowClient(port, bytes));
    const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
    expect((await health.check({ service: "" })).status).toBeDefined();
    // The longest applicable limit is the idle timeout (1.5 s); 10 s leaves room for a busy machine, not for "never".
    expect(await allWithin(closed, 10_000)).toBe(true);
  });

  it("closes an HTTP/1 request whose headers trickle in a byte at a time, at the header timeout", async () => {
    const socket = net.connect(app.httpPort, "127.0.0.1");
    socket.on("error", () => undefined);
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    const header = "POST /otp.v1.OtpService/SendOtp HTTP/1.1\r\nHost: x\r\nx-padding: " + "a".repeat(200);
    let sent = 0;
    // A byte every 200 ms: the socket is never idle for the 1.5 s idle timeout, only the 0.5 s header timeout can end it.
    const trickle = setInterval(() => {
      if (!socket.destroyed && sent < header.length) socket.write(header[sent++]!);
    }, 200);
    try {
      expect(await allWithin([closed], 10_000)).toBe(true);
      expect(sent).toBeLessThan(header.length);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
  });

  it("keeps WatchDelivery streams open past the idle timeout through their keep-alives, on both ports", async () => {
    const grpc = otpClient(createGrpcTransport({ baseUrl: `http://127.0.0.1:${app.grpcPort}` }));
    const connect = otpClient(createConnectTransport({ baseUrl: `http://127.0.0.1:${app.httpPort}`, httpVersion: "2" }));
    const sent = await grpc.sendOtp({ destination: { phone: uniquePhone() } }, auth("checkout"));
    const code = await codeFromInbox(app, sent.verificationId);
    // Each stream keeps alive at its own period: the code ends both once both have had 10, well past the 1.5 s idle timeout.
    let alive = 0;
    const verifyWhenBothAlive = async () => {
      if (++alive === 2) await grpc.verifyOtp({ verificationId: sent.verificationId, code }, auth("checkout")).catch(() => undefined);
    };
    const watch = async (client: typeof grpc) => {
      let keepAlives = 0;
      let last: DeliveryEventKind | undefined;
      for await (const item of client.watchDelivery({ verificationId: sent.verificationId }, { ...auth("checkout"), signal: AbortSignal.timeout(20_000) })) {
        if (item.event) last = item.event.kind;
        else keepAlives += 1;
        if (keepAlives === 10) await verifyWhenBothAlive();
      }
      return { keepAlives, last };
    };
    const results = await Promise.all([watch(grpc), watch(connect)]);
    for (const result of results) {
      expect(result.keepAlives).toBeGreaterThanOrEqual(10);
      expect(result.last).toBe(DeliveryEventKind.VERIFIED);
    }
  });
});

describe("connection caps", () => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await startTestApp({ connections: { maxConnections: 10 } });
  });
  afterAll(async () => {
    await app?.stop();
  });

  it.each(["http", "grpc"] as const)("the %s port closes connections beyond its cap at once", async (which) => {
    const port = which === "http" ? app.httpPort : app.grpcPort;
    const sockets: net.Socket[] = [];
    let closedEarly = 0;
    await Promise.all(
      Array.from({ length: 15 }, () =>
        new Promise<void>((resolve) => {
          const socket = net.connect(port, "127.0.0.1", () => resolve());
          socket.on("error", () => resolve());
          socket.once("close", () => (closedEarly += 1));
          sockets.push(socket);
        }),
      ),
    );
    const deadline = Date.now() + 5_000;
    while (closedEarly < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(closedEarly).toBe(5);
    for (const socket of sockets) socket.destroy();
  });
});
