import http from "node:http";
import http2 from "node:http2";
import { describe, expect, it } from "vitest";
import { HealthRegistry } from "../../src/transport/health.js";
import { startHttpServer, type PageHandler } from "../../src/transport/http-server.js";
import { DEFAULT_CONNECTION_LIMITS } from "../../src/transport/limits.js";

/**
 * Closing the HTTP port must not wait for clients' keep-alive connections to time out (a provider posting receipts
 * kept a stopping `serve` up for seconds). The timeouts here are a minute and the grace two: a close that waited
 * for either would outlast the test's limit.
 */
describe("closing the HTTP port", () => {
  const limits = { ...DEFAULT_CONNECTION_LIMITS, keepAliveTimeoutMs: 60_000, idleTimeoutMs: 60_000 };
  const GRACE_MS = 120_000;

  async function serverWithSlowPage() {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let arrived!: () => void;
    const slowArrived = new Promise<void>((resolve) => (arrived = resolve));
    const page: PageHandler = (request, response) => {
      if (request.url === "/slow") {
        arrived();
        void released.then(() => response.end("slow done"));
      } else {
        response.end("quick");
      }
      return true;
    };
    const server = await startHttpServer({ host: "127.0.0.1", port: 0, health: new HealthRegistry(), pages: [page], shutdownSignal: new AbortController().signal, limits });
    return { server, release, slowArrived };
  }

  it("HTTP/1.1: answers the request in flight, closes its keep-alive connection and the idle ones at once", async () => {
    const { server, release, slowArrived } = await serverWithSlowPage();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    const get = (path: string) =>
      new Promise<{ body: string; closed: Promise<void> }>((resolve, reject) => {
        const request = http.get({ host: "127.0.0.1", port: server.port, path, agent }, (response) => {
          let body = "";
          response.on("data", (d: Buffer) => (body += d.toString()));
          response.on("end", () => resolve({ body, closed: new Promise((r) => request.socket!.once("close", () => r())) }));
        });
        request.on("error", reject);
      });
    const idle = await get("/quick"); // its connection now waits, kept alive, for a next request
    const inFlight = get("/slow");
    await slowArrived;
    const closed = server.close(GRACE_MS);
    release();
    const answer = await inFlight;
    expect([idle.body, answer.body]).toEqual(["quick", "slow done"]);
    await Promise.all([idle.closed, answer.closed, closed]);
    agent.destroy();
  });

  it("HTTP/2: sends GOAWAY to an open session, lets its stream in flight finish, and closes", async () => {
    const { server, release, slowArrived } = await serverWithSlowPage();
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    const goaway = new Promise<void>((resolve) => session.once("goaway", () => resolve()));
    const sessionClosed = new Promise<void>((resolve) => session.once("close", () => resolve()));
    const stream = session.request({ ":path": "/slow" });
    let body = "";
    stream.on("data", (d: Buffer) => (body += d.toString()));
    const ended = new Promise<void>((resolve) => stream.once("end", () => resolve()));
    await slowArrived;
    const closed = server.close(GRACE_MS);
    await goaway;
    release();
    await ended;
    expect(body).toBe("slow done");
    await Promise.all([sessionClosed, closed]);
  });
});
