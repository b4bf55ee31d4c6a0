import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callJson } from "../../src/channels/providers/http-json.js";
import { providerFailure } from "../harness/provider-failure.js";
import { json, listenOnLoopback, readBody, stopServer } from "../peers/loopback-http.js";

/** A provider API on loopback whose /moved-* paths answer with a redirect to /elsewhere. */
describe("a provider call answered with a redirect", () => {
  let server: http.Server;
  let baseUrl: string;
  const received: { path: string; body: string }[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      void readBody(req).then((body) => {
        received.push({ path: req.url ?? "", body: body.toString() });
        const moved = /^\/moved-(\d{3})$/.exec(req.url ?? "");
        if (moved !== null) {
          res.writeHead(Number(moved[1]), { location: `${baseUrl}/elsewhere` });
          res.end();
          return;
        }
        json(res, 200, { id: "msg-1" });
      });
    });
    await listenOnLoopback(server);
    baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await stopServer(server);
  });

  const send = (path: string) =>
    callJson({ method: "POST", url: `${baseUrl}${path}`, headers: {}, body: { text: "123456 is your code" }, signal: AbortSignal.timeout(2_000) });

  it("fails permanently as not sent, and never posts the message where the redirect points", async () => {
    for (const status of [301, 302, 303, 307, 308]) {
      const failure = await providerFailure(send(`/moved-${status}`));
      expect(failure).toMatchObject({ retryable: false, ambiguous: false, code: "redirect" });
      expect(failure.message).toBe("provider answered with a redirect (check its URL)");
    }
    expect(received.map((r) => r.path)).toEqual(["/moved-301", "/moved-302", "/moved-303", "/moved-307", "/moved-308"]);
  });

  it("still posts the body and reads the answer of a provider that does not redirect", async () => {
    await expect(send("/send")).resolves.toEqual({ id: "msg-1" });
    expect(received.at(-1)).toEqual({ path: "/send", body: JSON.stringify({ text: "123456 is your code" }) });
  });
});
