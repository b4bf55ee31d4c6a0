import type { PageHandler } from "../transport/http-server.js";
import type { DevInbox, InboxMessage } from "./dev-inbox.js";

/**
 * `GET /dev/inbox` (a page that refreshes itself) and
 * `GET /dev/inbox.json?to=<destination>` (newest first), for `dev` only:
 * what the sandbox providers delivered, codes included.
 */
export function devInboxPages(inbox: DevInbox): PageHandler {
  return (request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    if (request.method !== "GET") return false;
    const to = url.searchParams.get("to") ?? undefined;
    if (url.pathname === "/dev/inbox.json") {
      response.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
      response.end(JSON.stringify({ messages: inbox.list(to).map(toJson) }));
      return true;
    }
    if (url.pathname === "/dev/inbox") {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      response.end(page(inbox.list(to)));
      return true;
    }
    return false;
  };
}

function toJson(m: InboxMessage) {
  return {
    channel: m.channel,
    to: m.to,
    subject: m.subject,
    body: m.body,
    verification_id: m.verificationId,
    delivered_at: m.deliveredAt.toISOString(),
  };
}

function page(messages: InboxMessage[]): string {
  const rows = messages
    .map(
      (m) =>
        `<tr><td>${esc(m.deliveredAt.toISOString())}</td><td>${esc(m.channel)}</td><td>${esc(m.to)}</td><td>${esc(m.subject)}</td><td><pre>${esc(m.body)}</pre></td><td><code>${esc(m.verificationId)}</code></td></tr>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="3"><title>otp-orchestrator · dev inbox</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}pre{margin:0;white-space:pre-wrap}</style></head>
<body><h1>Dev inbox</h1><p>Messages the sandbox providers delivered, newest first. This page exists only in <code>dev</code>.</p>
<table><thead><tr><th>Delivered</th><th>Channel</th><th>To</th><th>Subject</th><th>Body</th><th>Verification</th></tr></thead>
<tbody>${rows || '<tr><td colspan="6">No messages yet.</td></tr>'}</tbody></table></body></html>`;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
