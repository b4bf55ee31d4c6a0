import type { OutcomeDeps, ReceiptOutcome } from "../service/attempt-lifecycle.js";
import { applyReceipt } from "../service/attempt-lifecycle.js";
import { errorFields, type Logger } from "../telemetry/logger.js";
import type { PageHandler } from "../transport/http-server.js";
import type { WebhookReceiver } from "./receipt-source.js";

type Request = Parameters<PageHandler>[0];
type Response = Parameters<PageHandler>[1];

const PATH = /^\/webhooks\/dlr\/([a-z0-9][a-z0-9_-]{0,63})$/;
const MAX_BODY_BYTES = 256 * 1024;

/**
 * `POST /webhooks/dlr/<provider>`: receipts pushed by a provider. The request
 * must carry the provider's signature over the raw body (401 otherwise, and
 * nothing is recorded). Each receipt is applied, or parked when its message
 * id is not known yet; 200 either way, so the provider does not retry what we
 * already hold. 400 for a body that is not the provider's shape. A `GET` is a
 * provider's subscription handshake, for those that have one.
 */
export function dlrWebhook(receivers: ReadonlyMap<string, WebhookReceiver>, deps: OutcomeDeps, log: Logger): PageHandler {
  return (request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    const match = PATH.exec(url.pathname);
    if (match === null) return false;
    const receiver = receivers.get(match[1]!);
    if (request.method === "GET" && receiver?.handshake !== undefined) {
      request.resume();
      answerHandshake(receiver, url.searchParams, response, log);
      return true;
    }
    if (request.method !== "POST" || receiver === undefined) {
      reply(response, receiver === undefined ? 404 : 405, { error: receiver === undefined ? "no webhook for this provider" : "use POST" });
      request.resume();
      return true;
    }
    void handle(receiver, deps, log, request, response);
    return true;
  };
}

async function handle(receiver: WebhookReceiver, deps: OutcomeDeps, log: Logger, request: Request, response: Response): Promise<void> {
  try {
    const body = await readBody(request);
    if (body === undefined) return reply(response, 413, { error: `body over ${MAX_BODY_BYTES} bytes` });
    if (!receiver.authenticate(body, request.headers)) {
      log.warn("receipt webhook refused: bad or missing signature", { provider: receiver.provider });
      return reply(response, 401, { error: "bad signature" });
    }
    let receipts;
    try {
      receipts = receiver.parse(body);
    } catch (error) {
      return reply(response, 400, { error: `not a receipt: ${(error as Error).message}` });
    }
    const counts: Record<ReceiptOutcome, number> = { applied: 0, unchanged: 0, parked: 0 };
    for (const receipt of receipts) counts[await applyReceipt(deps, receipt)]++;
    if (counts.parked > 0) log.info("receipts parked for message ids not recorded yet", { provider: receiver.provider, parked: counts.parked });
    reply(response, 200, counts);
  } catch (error) {
    log.error("receipt webhook failed", { provider: receiver.provider, ...errorFields(error) });
    if (!response.headersSent) reply(response, 503, { error: "try again" });
  }
}

/** The challenge as plain text when the provider proved it knows our token; 403 otherwise. */
function answerHandshake(receiver: WebhookReceiver, query: URLSearchParams, response: Response, log: Logger): void {
  const answer = receiver.handshake!(query);
  if (answer === undefined) {
    log.warn("receipt webhook handshake refused: wrong verify token or challenge", { provider: receiver.provider });
    return reply(response, 403, { error: "wrong verify token" });
  }
  log.info("receipt webhook subscribed", { provider: receiver.provider });
  response.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
  response.end(answer);
}

async function readBody(request: Request): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function reply(response: Response, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}
