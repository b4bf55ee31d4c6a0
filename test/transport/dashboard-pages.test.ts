import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardPages } from "../../src/dashboard/dashboard-pages.js";
import type { PageHandler } from "../../src/transport/http-server.js";

/** A loopback server answering with one page handler, 404 when it declines. */
async function serveWith(page: PageHandler): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((request, response) => {
    if (!page(request, response)) response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

describe("dashboard pages", () => {
  let signIn: Awaited<ReturnType<typeof serveWith>>;
  let open: Awaited<ReturnType<typeof serveWith>>;
  beforeAll(async () => {
    [signIn, open] = await Promise.all([serveWith(dashboardPages({ signIn: true })), serveWith(dashboardPages({ signIn: false }))]);
  });
  afterAll(async () => {
    await Promise.all([signIn?.close(), open?.close()]);
  });

  it("asks for a token only when callers authenticate (not in dev)", async () => {
    expect(await (await fetch(`${signIn.url}/dashboard`)).text()).toContain('<meta name="otp-sign-in" content="sign-in">');
    expect(await (await fetch(`${open.url}/dashboard/`)).text()).toContain('<meta name="otp-sign-in" content="none">');
  });

  it("serves the page, its script and the bundled uPlot from this origin, under a strict content security policy", async () => {
    for (const [path, type] of [
      ["/dashboard", "text/html"],
      ["/dashboard/dashboard.js", "text/javascript"],
      ["/dashboard/dashboard.css", "text/css"],
      ["/dashboard/uPlot.iife.min.js", "text/javascript"],
      ["/dashboard/uPlot.min.css", "text/css"],
    ] as const) {
      const response = await fetch(`${signIn.url}${path}`);
      expect(response.status, path).toBe(200);
      expect(response.headers.get("content-type")).toContain(type);
      expect(response.headers.get("content-security-policy")).toContain("default-src 'none'; script-src 'self'");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
    // Every script and stylesheet the page names is one of those (nothing from another origin).
    const html = await (await fetch(`${signIn.url}/dashboard`)).text();
    expect([...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1])).toEqual(["data:,", "/dashboard/uPlot.min.css", "/dashboard/dashboard.css", "/dashboard/uPlot.iife.min.js", "/dashboard/dashboard.js"]);
  });

  it("answers HEAD without a body, refuses other methods, and leaves other paths to the next handler", async () => {
    const head = await fetch(`${signIn.url}/dashboard/dashboard.js`, { method: "HEAD" });
    expect([head.status, Number(head.headers.get("content-length")) > 0, await head.text()]).toEqual([200, true, ""]);
    const post = await fetch(`${signIn.url}/dashboard`, { method: "POST", body: "x" });
    expect([post.status, post.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
    expect((await fetch(`${signIn.url}/dashboard/../package.json`)).status).toBe(404);
    expect((await fetch(`${signIn.url}/dashboard/other.js`)).status).toBe(404);
  });
});
