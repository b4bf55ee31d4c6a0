import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { PageHandler } from "../transport/http-server.js";

/** The page's own files (beside this module's source, and beside the bundle: `npm run build` copies them) and uPlot. */
const ASSETS = fileURLToPath(new URL("./assets/", import.meta.url));
const UPLOT = createRequire(import.meta.url).resolve("uplot/dist/uPlot.iife.min.js");

interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

/**
 * Everything the page loads comes from this origin: no CDN, no inline script, and its API calls only here
 * (Connect JSON, with the caller's token as the bearer header). Not to be framed, and no referrer leaves it.
 */
const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/**
 * `GET /dashboard` and its files: delivery analytics for people (GetDeliveryStats, GetVerification).
 * The page holds no data of its own: it calls the API as the caller whose token is pasted into it
 * (kept in sessionStorage), or, when authentication is off (`dev`), as the one local caller.
 */
export function dashboardPages(options: { readonly signIn: boolean }): PageHandler {
  const file = (name: string, type: string): Asset => ({ type, body: readFileSync(`${ASSETS}${name}`) });
  const html = readFileSync(`${ASSETS}index.html`, "utf8").replace('content="sign-in"', `content="${options.signIn ? "sign-in" : "none"}"`);
  const assets = new Map<string, Asset>([
    ["/dashboard", { type: "text/html; charset=utf-8", body: Buffer.from(html) }],
    ["/dashboard/dashboard.js", file("dashboard.js", "text/javascript; charset=utf-8")],
    ["/dashboard/dashboard.css", file("dashboard.css", "text/css; charset=utf-8")],
    ["/dashboard/uPlot.min.css", { type: "text/css; charset=utf-8", body: readFileSync(UPLOT.replace(/uPlot\.iife\.min\.js$/, "uPlot.min.css")) }],
    ["/dashboard/uPlot.iife.min.js", { type: "text/javascript; charset=utf-8", body: readFileSync(UPLOT) }],
  ]);
  return (request, response) => {
    const path = (request.url ?? "/").split("?")[0]!.replace(/\/$/, "");
    const asset = assets.get(path);
    if (asset === undefined) return false;
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" });
      response.end("method not allowed\n");
      return true;
    }
    response.writeHead(200, { "content-type": asset.type, "content-length": asset.body.length, "cache-control": "no-cache", ...SECURITY_HEADERS });
    if (request.method === "HEAD") response.end();
    else response.end(asset.body);
    return true;
  };
}
