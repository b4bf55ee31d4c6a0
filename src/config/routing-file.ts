import { readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { CHANNELS, isChannel } from "../domain/channel.js";
import type { Route, TrafficClass } from "../domain/route.js";
import { parseDuration } from "./durations.js";
import { Secret } from "./secret.js";

/** How a provider's delivery receipts reach us. */
export type ReceiptMode = "webhook" | "poll" | "both" | "none";

export type ProviderSettings =
  | { readonly name: string; readonly type: "sandbox" }
  | {
      readonly name: string;
      readonly type: "http-route";
      readonly baseUrl: string;
      readonly apiKey: Secret;
      /** Shared secret of the receipt webhook's HMAC-SHA-256 signature. */
      readonly webhookSecret?: Secret;
      readonly receipts: ReceiptMode;
      readonly pollIntervalMs: number;
      /** The API de-duplicates sends by the `Idempotency-Key` header (we send the attempt id). */
      readonly idempotencyKey: boolean;
      readonly timeoutMs: number;
    }
  | {
      readonly name: string;
      readonly type: "smtp";
      readonly host: string;
      readonly port: number;
      /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
      readonly secure: boolean;
      readonly username?: string;
      readonly password?: Secret;
      readonly timeoutMs: number;
    };

/** Routes and the providers they go out through, from the configuration file (`OTP_CONFIG`). */
export interface RoutingConfig {
  readonly providers: readonly ProviderSettings[];
  readonly routes: readonly Route[];
}

/** A problem in the configuration file, naming the key at fault. */
export class RoutingFileError extends Error {
  override readonly name = "RoutingFileError";
}

type Node = Record<string, unknown>;

const TRAFFIC_CLASSES: readonly TrafficClass[] = ["otp", "transactional", "marketing"];
const RECEIPT_MODES: readonly ReceiptMode[] = ["webhook", "poll", "both", "none"];
const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Reads and checks the YAML file; secret files are read relative to it. */
export function loadRoutingFile(file: string): RoutingConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new RoutingFileError(`${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new RoutingFileError(`${file}: not valid YAML: ${(error as Error).message.split("\n")[0]}`);
  }
  return parseRouting(document, path.dirname(path.resolve(file)));
}

/** Checks a parsed document. `baseDir` resolves relative secret-file paths. */
export function parseRouting(document: unknown, baseDir: string): RoutingConfig {
  const root = object(document, "(top level)");
  const providerNodes = object(root.providers ?? {}, "providers");
  const providers = Object.entries(providerNodes).map(([name, node]) => parseProvider(name, object(node, `providers.${name}`), baseDir));
  const routeNodes = root.routes ?? [];
  if (!Array.isArray(routeNodes)) throw new RoutingFileError("routes: expected a list");
  const names = new Set(providers.map((p) => p.name));
  const routes = routeNodes.map((node, i) => parseRoute(object(node, `routes[${i}]`), `routes[${i}]`, names));
  const duplicate = routes.find((r, i) => routes.findIndex((o) => o.id === r.id) !== i);
  if (duplicate) throw new RoutingFileError(`routes: route id "${duplicate.id}" appears twice`);
  for (const key of Object.keys(root)) {
    if (!["providers", "routes"].includes(key)) throw new RoutingFileError(`${key}: unknown key (expected providers, routes)`);
  }
  return { providers, routes };
}

function parseProvider(name: string, node: Node, baseDir: string): ProviderSettings {
  const at = `providers.${name}`;
  if (!NAME.test(name)) throw new RoutingFileError(`${at}: provider names are lower-case letters, digits, - and _`);
  const type = string(node.type, `${at}.type`);
  const timeoutMs = duration(node.timeout ?? "10s", `${at}.timeout`);
  switch (type) {
    case "sandbox":
      return { name, type };
    case "http-route": {
      const receipts = (node.receipts ?? "webhook") as ReceiptMode;
      if (!RECEIPT_MODES.includes(receipts)) throw new RoutingFileError(`${at}.receipts: expected one of ${RECEIPT_MODES.join(", ")}`);
      const webhookSecret = secret(node, "webhook_secret", at, baseDir);
      if ((receipts === "webhook" || receipts === "both") && webhookSecret === undefined) {
        throw new RoutingFileError(`${at}.webhook_secret: required when receipts come by webhook (or set webhook_secret_file)`);
      }
      const apiKey = secret(node, "api_key", at, baseDir);
      if (apiKey === undefined) throw new RoutingFileError(`${at}.api_key: required (or api_key_file)`);
      return {
        name,
        type,
        baseUrl: url(node.base_url, `${at}.base_url`),
        apiKey,
        ...(webhookSecret ? { webhookSecret } : {}),
        receipts,
        pollIntervalMs: duration(node.poll_interval ?? "30s", `${at}.poll_interval`),
        idempotencyKey: boolean(node.idempotency_key ?? false, `${at}.idempotency_key`),
        timeoutMs,
      };
    }
    case "smtp": {
      const username = node.username === undefined ? undefined : string(node.username, `${at}.username`);
      const password = secret(node, "password", at, baseDir);
      return {
        name,
        type,
        host: string(node.host, `${at}.host`),
        port: integer(node.port ?? 587, `${at}.port`, 1, 65_535),
        secure: boolean(node.secure ?? false, `${at}.secure`),
        ...(username ? { username } : {}),
        ...(password ? { password } : {}),
        timeoutMs,
      };
    }
    default:
      throw new RoutingFileError(`${at}.type: unknown provider type "${type}" (expected sandbox, http-route, smtp)`);
  }
}

function parseRoute(node: Node, at: string, providers: ReadonlySet<string>): Route {
  const id = string(node.id, `${at}.id`);
  if (!NAME.test(id)) throw new RoutingFileError(`${at}.id: route ids are lower-case letters, digits, - and _`);
  const channel = string(node.channel, `${at}.channel`);
  if (!isChannel(channel)) throw new RoutingFileError(`${at}.channel: expected one of ${CHANNELS.join(", ")}`);
  const provider = string(node.provider, `${at}.provider`);
  if (!providers.has(provider)) throw new RoutingFileError(`${at}.provider: no provider named "${provider}" under providers`);
  const trafficClass = string(node.traffic_class, `${at}.traffic_class`) as TrafficClass;
  if (!TRAFFIC_CLASSES.includes(trafficClass)) throw new RoutingFileError(`${at}.traffic_class: expected one of ${TRAFFIC_CLASSES.join(", ")}`);
  const countries = node.countries ?? ["*"];
  if (!Array.isArray(countries) || countries.some((c) => typeof c !== "string" || !/^([A-Z]{2}|\*)$/.test(c))) {
    throw new RoutingFileError(`${at}.countries: expected a list of ISO 3166-1 alpha-2 codes (e.g. NL) or "*"`);
  }
  const currency = string(node.currency ?? "EUR", `${at}.currency`);
  if (!/^[A-Z]{3}$/.test(currency)) throw new RoutingFileError(`${at}.currency: expected an ISO 4217 code such as EUR`);
  const prices = object(node.prices ?? { "*": 0 }, `${at}.prices`);
  const pricesMicros: Record<string, number> = {};
  for (const [country, amount] of Object.entries(prices)) {
    if (typeof amount !== "number" || !Number.isFinite(amount) || amount < 0) {
      throw new RoutingFileError(`${at}.prices.${country}: expected a non-negative amount in ${currency}, e.g. 0.072`);
    }
    pricesMicros[country] = Math.round(amount * 1_000_000);
  }
  return {
    id,
    channel,
    provider,
    providerRoute: node.provider_route === undefined ? id : String(node.provider_route),
    trafficClass,
    sender: string(node.sender, `${at}.sender`),
    countries: countries as string[],
    currency,
    pricesMicros,
  };
}

/** `<key>` inline, or `<key>_file` naming a file whose trimmed content is the secret. */
function secret(node: Node, key: string, at: string, baseDir: string): Secret | undefined {
  const inline = node[key];
  const file = node[`${key}_file`];
  if (inline !== undefined && file !== undefined) throw new RoutingFileError(`${at}: set ${key} or ${key}_file, not both`);
  if (inline !== undefined) return new Secret(string(inline, `${at}.${key}`));
  if (file === undefined) return undefined;
  const resolved = path.resolve(baseDir, string(file, `${at}.${key}_file`));
  try {
    return new Secret(readFileSync(resolved, "utf8").trim());
  } catch (error) {
    throw new RoutingFileError(`${at}.${key}_file: cannot read ${resolved} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

function object(value: unknown, at: string): Node {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new RoutingFileError(`${at}: expected a mapping`);
  return value as Node;
}

function string(value: unknown, at: string): string {
  if (typeof value !== "string" || value.trim() === "") throw new RoutingFileError(`${at}: expected a non-empty string`);
  return value;
}

function boolean(value: unknown, at: string): boolean {
  if (typeof value !== "boolean") throw new RoutingFileError(`${at}: expected true or false`);
  return value;
}

function integer(value: unknown, at: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RoutingFileError(`${at}: expected an integer ${min}–${max}`);
  }
  return value;
}

function duration(value: unknown, at: string): number {
  const ms = typeof value === "string" ? parseDuration(value) : undefined;
  if (ms === undefined || ms < 1) throw new RoutingFileError(`${at}: expected a duration such as 500ms, 15s, 10m`);
  return ms;
}

function url(value: unknown, at: string): string {
  const text = string(value, at);
  try {
    const parsed = new URL(text);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error("not http");
  } catch {
    throw new RoutingFileError(`${at}: expected an http(s) URL, got "${text}"`);
  }
  return text.replace(/\/+$/, "");
}
