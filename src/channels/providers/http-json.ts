import { ProviderError } from "../provider.js";

export interface JsonRequest {
  readonly method: "GET" | "POST";
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Sent as JSON. */
  readonly body?: unknown;
  /** Sent form-encoded instead (OAuth token endpoints, Twilio). */
  readonly form?: URLSearchParams;
  readonly signal: AbortSignal;
  /** A provider's own reading of an error answer (its error codes), before the status classes below. */
  readonly classify?: (status: number, body: unknown) => ProviderError | undefined;
}

/**
 * One call to a provider's HTTP API answering JSON, failures classified: no connection
 * → retryable (not sent); timeout or a dropped connection → retryable and
 * ambiguous (it may have been sent); 429 and 5xx → retryable; 401/403 →
 * permanent "auth"; other 4xx → permanent; a redirect → permanent "redirect"
 * (never followed: following it would post the message, code and all, to
 * wherever the redirect points). The error message carries the provider's own
 * error text, never our request (which holds the code).
 */
export async function callJson(request: JsonRequest): Promise<unknown> {
  let response: Response;
  try {
    const body = request.form !== undefined ? request.form.toString() : request.body !== undefined ? JSON.stringify(request.body) : undefined;
    const contentType = request.form !== undefined ? "application/x-www-form-urlencoded" : "application/json";
    response = await fetch(request.url, {
      method: request.method,
      headers: { accept: "application/json", ...(body !== undefined ? { "content-type": contentType } : {}), ...request.headers },
      ...(body !== undefined ? { body } : {}),
      signal: request.signal,
      // Redirects fail the call instead of being followed. With no window and this mode undici also
      // skips cloning the request (a tee of its body stream) that following a redirect would need.
      redirect: "error",
      window: null,
    });
  } catch (error) {
    throw classifyNetworkError(error, request.signal);
  }
  const text = await response.text().catch(() => "");
  if (response.ok) {
    try {
      return text === "" ? {} : JSON.parse(text);
    } catch {
      throw new ProviderError(`provider answered ${response.status} with a body that is not JSON`, true, "bad_response", true);
    }
  }
  const status = response.status;
  const refined = request.classify?.(status, parseOrText(text));
  if (refined !== undefined) throw refined;
  const detail = providerErrorText(text);
  if (status === 429 || status >= 500) throw new ProviderError(`provider answered ${status}${detail}`, true, `http_${status}`);
  if (status === 401 || status === 403) throw new ProviderError(`provider refused our credentials (${status})${detail}`, false, "auth");
  throw new ProviderError(`provider rejected the request (${status})${detail}`, false, `http_${status}`);
}

function classifyNetworkError(error: unknown, signal: AbortSignal): ProviderError {
  if (signal.aborted) return new ProviderError("provider did not answer in time", true, "timeout", true);
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  // The provider answered 3xx (undici's network error for `redirect: "error"`): it did not take the message,
  // and asking again gets the same answer. A wrong base URL (http for https, a moved API) is a configuration error.
  if (cause?.message === "unexpected redirect") return new ProviderError("provider answered with a redirect (check its URL)", false, "redirect");
  const code = cause?.code ?? "network";
  // Refused or unresolvable: the request never left; anything else may have been received.
  const notSent = code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN";
  return new ProviderError(`cannot reach provider (${code})`, true, notSent ? "unreachable" : "network", !notSent);
}

function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The provider's error text, short: `{"error": "..."}`, `{"error": {"message"}}` or `{"message": "..."}`, else the first line. */
function providerErrorText(body: string): string {
  let text = body;
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown; detail?: unknown };
    const value = parsed.error ?? parsed.message ?? parsed.detail;
    if (typeof value === "string") text = value;
    // Google APIs: {"error": {"code", "message", "status"}}
    else if (typeof value === "object" && value !== null && typeof (value as { message?: unknown }).message === "string") {
      const { message, status } = value as { message: string; status?: unknown };
      text = typeof status === "string" ? `${status}: ${message}` : message;
    }
  } catch {
    // not JSON: keep the text
  }
  const line = text.split("\n")[0]!.trim().slice(0, 200);
  return line ? `: ${line}` : "";
}
