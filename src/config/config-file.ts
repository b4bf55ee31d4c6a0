import { createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import type { CallerConfig } from "../api/auth.js";
import { CHANNELS, isChannel, type Channel } from "../domain/channel.js";
import type { EscalateWhen, Policy, PolicyStep } from "../domain/plan.js";
import type { Route, TrafficClass } from "../domain/route.js";
import type { TextOverrides } from "../domain/messages/catalogue.js";
import { fillText, TEXT_KEYS, textProblem, type TextKey } from "../domain/messages/message-texts.js";
import { smsSize } from "../domain/sms-text.js";
import type { DailySpendCap } from "../domain/spend-cap.js";
import { parseDuration } from "./durations.js";
import { DEFAULT_POLICIES } from "./default-policy.js";
import { Secret } from "./secret.js";

/** How a provider's delivery receipts reach us. */
export type ReceiptMode = "webhook" | "poll" | "both" | "none";

/** How the FCM provider gets its OAuth 2 access tokens. */
export type FcmAuth =
  /** A file holding a token, read on every send: something else rotates it. */
  | { readonly kind: "token-file"; readonly file: string }
  /** Minted from a service account (JWT bearer grant) and cached until shortly before they expire. */
  | { readonly kind: "service-account"; readonly clientEmail: string; readonly privateKey: KeyObject; readonly tokenUri: string };

export type ProviderSettings =
  | { readonly name: string; readonly type: "sandbox" }
  | {
      readonly name: string;
      readonly type: "twilio";
      /** https://api.twilio.com, or any Twilio-API-compatible provider. */
      readonly baseUrl: string;
      readonly accountSid: string;
      /** Signs the status callbacks; also the API password unless an API key is set. */
      readonly authToken: Secret;
      /** An API key (SID and secret) to call the API with instead of the account's auth token. */
      readonly apiKey?: { readonly sid: string; readonly secret: Secret };
      /** Sends SMS from a Messaging Service (its sender pool) instead of the route's sender. */
      readonly messagingServiceSid?: string;
      /** Our public URL of the status callback, exactly as Twilio will sign it. */
      readonly statusCallbackUrl: string;
      readonly timeoutMs: number;
    }
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
      readonly type: "voice-http";
      readonly baseUrl: string;
      readonly apiKey: Secret;
      /** Shared secret of the call-status webhook's HMAC-SHA-256 signature. */
      readonly webhookSecret: Secret;
      /** Where the provider posts call status: our public `/webhooks/dlr/<name>` URL. */
      readonly statusCallbackUrl?: string;
      readonly idempotencyKey: boolean;
      readonly timeoutMs: number;
    }
  | {
      readonly name: string;
      readonly type: "fcm";
      /** https://fcm.googleapis.com in production. */
      readonly baseUrl: string;
      readonly projectId: string;
      readonly auth: FcmAuth;
      readonly timeoutMs: number;
    }
  | {
      readonly name: string;
      readonly type: "smpp";
      /** The SMSC: SMPP 3.4 over TCP, or TLS when `tls`. */
      readonly host: string;
      readonly port: number;
      readonly tls: boolean;
      /** PEM certificates trusted for the SMSC besides the system's (a carrier's private CA). */
      readonly tlsCa?: string;
      readonly systemId: string;
      readonly password: Secret;
      readonly systemType: string;
      /** Transceiver sessions held open at once (an account is allowed a few). */
      readonly binds: number;
      /** `submit_sm` awaiting their response, at most, per bind. */
      readonly window: number;
      /** Messages per second, at most, per bind (carriers accept about 100–150). */
      readonly throughput: number;
      readonly enquireLinkMs: number;
      readonly timeoutMs: number;
    }
  | {
      readonly name: string;
      readonly type: "whatsapp-cloud";
      /** The Graph API with its version, https://graph.facebook.com/v21.0, or a compatible provider's. */
      readonly baseUrl: string;
      /** A system user's access token with whatsapp_business_messaging. */
      readonly accessToken: Secret;
      /** The Meta app's secret: signs the status webhooks (`X-Hub-Signature-256`). */
      readonly appSecret: Secret;
      /** What Meta must present in the webhook subscription handshake (`hub.verify_token`). */
      readonly verifyToken: Secret;
      /** The approved authentication template, and the languages it was approved in (Meta's codes; the first is the default). */
      readonly template: { readonly name: string; readonly languages: readonly [string, ...string[]] };
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

/** Routes, the providers they go out through, and the fallback policies that use them. */
export interface RoutingConfig {
  readonly providers: readonly ProviderSettings[];
  readonly routes: readonly Route[];
  /** By name; always holds "default". */
  readonly policies: ReadonlyMap<string, Policy>;
}

/** The configuration file (`OTP_CONFIG`). */
export interface ConfigFile {
  readonly routing: RoutingConfig;
  /** Message texts replacing the shipped ones for every caller, by locale (`messages`). */
  readonly messages?: TextOverrides;
  /** Calling services; undefined when the file has no `callers` section. */
  readonly callers?: readonly CallerConfig[];
}

/** A problem in the configuration file, naming the key at fault. */
export class ConfigFileError extends Error {
  override readonly name = "ConfigFileError";
}

type Node = Record<string, unknown>;

const TRAFFIC_CLASSES: readonly TrafficClass[] = ["otp", "transactional", "marketing"];
const RECEIPT_MODES: readonly ReceiptMode[] = ["webhook", "poll", "both", "none"];
const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** WhatsApp's template language codes: "en", "en_US", "pt_BR", "zh_HK". */
const WHATSAPP_LANGUAGE = /^[a-z]{2,3}(_[A-Z]{2}|_[A-Z][a-z]{3})?$/;

/** Reads and checks the YAML file; secret files are read relative to it. */
export function loadConfigFile(file: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigFileError(`${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new ConfigFileError(`${file}: not valid YAML: ${(error as Error).message.split("\n")[0]}`);
  }
  return parseConfigFile(document, path.dirname(path.resolve(file)));
}

/** Checks a parsed document. `baseDir` resolves relative secret-file paths. */
export function parseConfigFile(document: unknown, baseDir: string): ConfigFile {
  const root = object(document, "(top level)");
  const providerNodes = object(root.providers ?? {}, "providers");
  const providers = Object.entries(providerNodes).map(([name, node]) => parseProvider(name, object(node, `providers.${name}`), baseDir));
  const routeNodes = root.routes ?? [];
  if (!Array.isArray(routeNodes)) throw new ConfigFileError("routes: expected a list");
  const providerTypes = new Map(providers.map((p) => [p.name, p.type]));
  const routes = routeNodes.map((node, i) => parseRoute(object(node, `routes[${i}]`), `routes[${i}]`, providerTypes));
  const duplicate = routes.find((r, i) => routes.findIndex((o) => o.id === r.id) !== i);
  if (duplicate) throw new ConfigFileError(`routes: route id "${duplicate.id}" appears twice`);
  const routeIds = new Set(routes.map((r) => r.id));
  const policies = root.policies === undefined ? DEFAULT_POLICIES : parsePolicies(object(root.policies, "policies"), routeIds);
  const callers =
    root.callers === undefined
      ? undefined
      : Object.entries(object(root.callers, "callers")).map(([id, node]) => parseCaller(id, object(node, `callers.${id}`), routeIds, baseDir));
  for (const caller of callers ?? []) checkCapCurrency(caller, routes);
  const messages = root.messages === undefined ? undefined : parseMessages(object(root.messages, "messages"), "messages");
  for (const key of Object.keys(root)) {
    if (!TOP_LEVEL_KEYS.includes(key)) throw new ConfigFileError(`${key}: unknown key (expected ${TOP_LEVEL_KEYS.join(", ")})`);
  }
  return { routing: { providers, routes, policies }, ...(callers ? { callers } : {}), ...(messages ? { messages } : {}) };
}

const TOP_LEVEL_KEYS = ["providers", "routes", "policies", "callers", "messages"];
const CALLER_KEYS = ["token_sha256", "token_sha256_file", "channels", "countries", "routes", "senders", "credit", "daily_spend_cap", "messages"];
const ESCALATIONS: readonly EscalateWhen[] = ["undelivered", "unverified"];

function parsePolicies(nodes: Node, routeIds: ReadonlySet<string>): Map<string, Policy> {
  const policies = new Map<string, Policy>();
  for (const [name, value] of Object.entries(nodes)) {
    const at = `policies.${name}`;
    if (!NAME.test(name)) throw new ConfigFileError(`${at}: policy names are lower-case letters, digits, - and _`);
    const node = object(value, at);
    const countries = object(node.countries ?? {}, `${at}.countries`);
    const countrySteps = new Map<string, PolicyStep[]>();
    for (const [country, steps] of Object.entries(countries)) {
      if (!/^[A-Z]{2}$/.test(country)) throw new ConfigFileError(`${at}.countries.${country}: expected an ISO 3166-1 alpha-2 code`);
      countrySteps.set(country, parseSteps(steps, `${at}.countries.${country}`, routeIds));
    }
    policies.set(name, { name, steps: parseSteps(node.steps, `${at}.steps`, routeIds), ...(countrySteps.size ? { countrySteps } : {}) });
  }
  if (!policies.has("default")) throw new ConfigFileError("policies.default: required (used when a request names no policy)");
  return policies;
}

function parseSteps(value: unknown, at: string, routeIds: ReadonlySet<string>): PolicyStep[] {
  if (!Array.isArray(value) || value.length === 0) throw new ConfigFileError(`${at}: expected a non-empty list of steps`);
  return value.map((item, i) => {
    const node = object(item, `${at}[${i}]`);
    const channel = string(node.channel, `${at}[${i}].channel`);
    if (!isChannel(channel)) throw new ConfigFileError(`${at}[${i}].channel: expected one of ${CHANNELS.join(", ")}`);
    const escalateWhen = string(node.escalate_when ?? "unverified", `${at}[${i}].escalate_when`) as EscalateWhen;
    if (!ESCALATIONS.includes(escalateWhen)) throw new ConfigFileError(`${at}[${i}].escalate_when: expected undelivered or unverified`);
    const routeId = node.route === undefined ? undefined : string(node.route, `${at}[${i}].route`);
    if (routeId !== undefined && !routeIds.has(routeId)) throw new ConfigFileError(`${at}[${i}].route: no route with id "${routeId}"`);
    return {
      channel,
      ...stepDeadlineSettings(node, `${at}[${i}]`),
      escalateWhen,
      ...(routeId ? { routeId } : {}),
      ...(node.cooldown !== undefined ? { cooldownMs: duration(node.cooldown, `${at}[${i}].cooldown`) } : {}),
    };
  });
}

/** `deadline: 15s`, or `deadline: auto` with optional `deadline_min` / `deadline_max` (3 s and 30 s by default). */
function stepDeadlineSettings(node: Node, at: string): Pick<PolicyStep, "deadlineMs" | "autoDeadline"> {
  if (node.deadline !== "auto") {
    for (const key of ["deadline_min", "deadline_max"]) {
      if (node[key] !== undefined) throw new ConfigFileError(`${at}.${key}: only with deadline: auto`);
    }
    return { deadlineMs: duration(node.deadline ?? "30s", `${at}.deadline`) };
  }
  const minMs = duration(node.deadline_min ?? "3s", `${at}.deadline_min`);
  const maxMs = duration(node.deadline_max ?? "30s", `${at}.deadline_max`);
  if (minMs > maxMs) throw new ConfigFileError(`${at}.deadline_min: must not be longer than deadline_max`);
  return { deadlineMs: maxMs, autoDeadline: { minMs, maxMs } };
}

function parseCaller(id: string, node: Node, routeIds: ReadonlySet<string>, baseDir: string): CallerConfig {
  const at = `callers.${id}`;
  if (!NAME.test(id)) throw new ConfigFileError(`${at}: caller ids are lower-case letters, digits, - and _`);
  // A misspelt limit must not pass silently as no limit.
  const unknown = Object.keys(node).find((key) => !CALLER_KEYS.includes(key));
  if (unknown !== undefined) throw new ConfigFileError(`${at}.${unknown}: unknown key (expected ${CALLER_KEYS.join(", ")})`);
  const digest = secret(node, "token_sha256", at, baseDir)?.reveal().toLowerCase();
  if (digest === undefined || !/^[0-9a-f]{64}$/.test(digest)) {
    throw new ConfigFileError(`${at}.token_sha256: required, the SHA-256 hex of the caller's bearer token (or token_sha256_file)`);
  }
  const list = (key: string, check: (v: string) => boolean, expected: string): string[] | undefined => {
    const value = node[key];
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || !check(v))) throw new ConfigFileError(`${at}.${key}: expected a list of ${expected}`);
    return value as string[];
  };
  const channels = list("channels", isChannel, CHANNELS.join(" / "));
  const countries = list("countries", (c) => /^[A-Z]{2}$/.test(c), "ISO 3166-1 alpha-2 codes");
  const routes = list("routes", (r) => routeIds.has(r), "configured route ids");
  const senders = list("senders", (s) => SENDER.test(s), "sender ids, numbers or addresses (1–64 printable characters)");
  let credit: CallerConfig["credit"];
  if (node.credit !== undefined) {
    const c = object(node.credit, `${at}.credit`);
    const currency = string(c.currency, `${at}.credit.currency`);
    if (!/^[A-Z]{3}$/.test(currency)) throw new ConfigFileError(`${at}.credit.currency: expected an ISO 4217 code such as EUR`);
    if (typeof c.amount !== "number" || !Number.isFinite(c.amount) || c.amount < 0) {
      throw new ConfigFileError(`${at}.credit.amount: expected a non-negative amount in ${currency}`);
    }
    credit = { currency, micros: Math.round(c.amount * 1_000_000) };
  }
  const dailySpendCap = node.daily_spend_cap === undefined ? undefined : parseSpendCap(object(node.daily_spend_cap, `${at}.daily_spend_cap`), `${at}.daily_spend_cap`);
  const messages = node.messages === undefined ? undefined : parseMessages(object(node.messages, `${at}.messages`), `${at}.messages`);
  return {
    id,
    tokenSha256: digest,
    ...(channels ? { channels: channels as Channel[] } : {}),
    ...(countries ? { countries } : {}),
    ...(routes ? { routes } : {}),
    ...(senders ? { senders } : {}),
    ...(credit ? { credit } : {}),
    ...(dailySpendCap ? { dailySpendCap } : {}),
    ...(messages ? { messages } : {}),
  };
}

/**
 * `{ nl: { sms: "…", email_subject: "…" }, fr-CA: {…} }`: texts by BCP 47 locale, each checked — known keys and
 * placeholders, balanced `[ ]`, the code where one is needed, an SMS that fits one segment without a brand.
 */
function parseMessages(node: Node, at: string): TextOverrides {
  const byLocale = new Map<string, Partial<Record<TextKey, string>>>();
  for (const [tag, texts] of Object.entries(node)) {
    let locale: string;
    try {
      [locale] = Intl.getCanonicalLocales(tag) as [string];
    } catch {
      throw new ConfigFileError(`${at}.${tag}: not a BCP 47 language tag (e.g. nl, pt-BR)`);
    }
    const replaced: Partial<Record<TextKey, string>> = {};
    for (const [key, text] of Object.entries(object(texts, `${at}.${tag}`))) {
      const field = TEXT_KEYS[key as keyof typeof TEXT_KEYS];
      if (field === undefined) throw new ConfigFileError(`${at}.${tag}.${key}: unknown key (expected ${Object.keys(TEXT_KEYS).join(", ")})`);
      const value = string(text, `${at}.${tag}.${key}`);
      const problem = textProblem(field, value);
      if (problem !== undefined) throw new ConfigFileError(`${at}.${tag}.${key}: ${problem}`);
      if (field === "sms" && smsSize(fillText(value, { code: "000000", brand: "", minutes: 10 })).segments > 1) {
        throw new ConfigFileError(`${at}.${tag}.sms: does not fit one SMS segment even without a brand (160 GSM-7 or 70 UCS-2 characters)`);
      }
      replaced[field] = value;
    }
    byLocale.set(locale, replaced);
  }
  return byLocale;
}

/** `{ currency: EUR, countries: { NG: 5, "*": 50 } }`: per destination country per UTC day; "*" caps every other country. */
function parseSpendCap(node: Node, at: string): DailySpendCap {
  const currency = string(node.currency, `${at}.currency`);
  if (!/^[A-Z]{3}$/.test(currency)) throw new ConfigFileError(`${at}.currency: expected an ISO 4217 code such as EUR`);
  const countries = new Map<string, number>();
  let otherCountries: number | undefined;
  for (const [country, amount] of Object.entries(object(node.countries, `${at}.countries`))) {
    if (country !== "*" && !/^[A-Z]{2}$/.test(country)) throw new ConfigFileError(`${at}.countries.${country}: expected an ISO 3166-1 alpha-2 code or "*"`);
    if (typeof amount !== "number" || !Number.isFinite(amount) || amount < 0) {
      throw new ConfigFileError(`${at}.countries.${country}: expected a non-negative amount in ${currency}`);
    }
    const micros = Math.round(amount * 1_000_000);
    if (country === "*") otherCountries = micros;
    else countries.set(country, micros);
  }
  return { currency, countries, ...(otherCountries !== undefined ? { otherCountries } : {}) };
}

/** A cap compares prices in its own currency: every priced route the caller may use must price in it. */
function checkCapCurrency(caller: CallerConfig, routes: readonly Route[]): void {
  const cap = caller.dailySpendCap;
  if (cap === undefined) return;
  const other = routes.find((r) => (caller.routes === undefined || caller.routes.includes(r.id)) && r.currency !== cap.currency);
  if (other !== undefined) {
    throw new ConfigFileError(`callers.${caller.id}.daily_spend_cap.currency: route ${other.id} prices in ${other.currency}, the cap is in ${cap.currency}`);
  }
}

function parseProvider(name: string, node: Node, baseDir: string): ProviderSettings {
  const at = `providers.${name}`;
  if (!NAME.test(name)) throw new ConfigFileError(`${at}: provider names are lower-case letters, digits, - and _`);
  const type = string(node.type, `${at}.type`);
  const timeoutMs = duration(node.timeout ?? "10s", `${at}.timeout`);
  switch (type) {
    case "sandbox":
      return { name, type };
    case "http-route": {
      const receipts = (node.receipts ?? "webhook") as ReceiptMode;
      if (!RECEIPT_MODES.includes(receipts)) throw new ConfigFileError(`${at}.receipts: expected one of ${RECEIPT_MODES.join(", ")}`);
      const webhookSecret = secret(node, "webhook_secret", at, baseDir);
      if ((receipts === "webhook" || receipts === "both") && webhookSecret === undefined) {
        throw new ConfigFileError(`${at}.webhook_secret: required when receipts come by webhook (or set webhook_secret_file)`);
      }
      const apiKey = secret(node, "api_key", at, baseDir);
      if (apiKey === undefined) throw new ConfigFileError(`${at}.api_key: required (or api_key_file)`);
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
    case "twilio": {
      const accountSid = string(node.account_sid, `${at}.account_sid`);
      if (!/^AC[0-9a-zA-Z]{32}$/.test(accountSid)) throw new ConfigFileError(`${at}.account_sid: expected AC followed by 32 letters or digits`);
      const authToken = secret(node, "auth_token", at, baseDir);
      if (authToken === undefined) throw new ConfigFileError(`${at}.auth_token: required: it signs the status callbacks (or auth_token_file)`);
      const apiKeySecret = secret(node, "api_key_secret", at, baseDir);
      if ((node.api_key_sid === undefined) !== (apiKeySecret === undefined)) throw new ConfigFileError(`${at}.api_key_sid: set with api_key_secret (or api_key_secret_file), or neither`);
      const messagingServiceSid = node.messaging_service_sid === undefined ? undefined : string(node.messaging_service_sid, `${at}.messaging_service_sid`);
      if (messagingServiceSid !== undefined && !/^MG[0-9a-zA-Z]{32}$/.test(messagingServiceSid)) throw new ConfigFileError(`${at}.messaging_service_sid: expected MG followed by 32 letters or digits`);
      return {
        name,
        type,
        baseUrl: url(node.base_url ?? "https://api.twilio.com", `${at}.base_url`),
        accountSid,
        authToken,
        ...(apiKeySecret !== undefined ? { apiKey: { sid: string(node.api_key_sid, `${at}.api_key_sid`), secret: apiKeySecret } } : {}),
        ...(messagingServiceSid !== undefined ? { messagingServiceSid } : {}),
        statusCallbackUrl: url(node.status_callback_url, `${at}.status_callback_url`),
        timeoutMs,
      };
    }
    case "voice-http": {
      const apiKey = secret(node, "api_key", at, baseDir);
      if (apiKey === undefined) throw new ConfigFileError(`${at}.api_key: required (or api_key_file)`);
      const webhookSecret = secret(node, "webhook_secret", at, baseDir);
      if (webhookSecret === undefined) throw new ConfigFileError(`${at}.webhook_secret: required: call status arrives by signed webhook (or webhook_secret_file)`);
      return {
        name,
        type,
        baseUrl: url(node.base_url, `${at}.base_url`),
        apiKey,
        webhookSecret,
        ...(node.status_callback_url !== undefined ? { statusCallbackUrl: url(node.status_callback_url, `${at}.status_callback_url`) } : {}),
        idempotencyKey: boolean(node.idempotency_key ?? false, `${at}.idempotency_key`),
        timeoutMs,
      };
    }
    case "fcm": {
      if ((node.access_token_file === undefined) === (node.service_account_file === undefined)) {
        throw new ConfigFileError(`${at}: set service_account_file (access tokens minted from it) or access_token_file (a token something else rotates), one of them`);
      }
      const account = node.service_account_file === undefined ? undefined : serviceAccount(path.resolve(baseDir, string(node.service_account_file, `${at}.service_account_file`)), `${at}.service_account_file`);
      const projectId = node.project_id === undefined && account?.projectId ? account.projectId : string(node.project_id, `${at}.project_id`);
      return {
        name,
        type,
        baseUrl: url(node.base_url ?? "https://fcm.googleapis.com", `${at}.base_url`),
        projectId,
        auth: account ?? { kind: "token-file", file: path.resolve(baseDir, string(node.access_token_file, `${at}.access_token_file`)) },
        timeoutMs,
      };
    }
    case "smpp": {
      const password = secret(node, "password", at, baseDir);
      if (password === undefined) throw new ConfigFileError(`${at}.password: required (or password_file)`);
      const systemId = string(node.system_id, `${at}.system_id`);
      // SMPP 3.4 limits: system_id 16 octets, password 9, system_type 13 (each with its terminating NUL).
      if (systemId.length > 15) throw new ConfigFileError(`${at}.system_id: at most 15 characters (SMPP 3.4)`);
      if (password.reveal().length > 8) throw new ConfigFileError(`${at}.password: at most 8 characters (SMPP 3.4)`);
      const systemType = node.system_type === undefined ? "" : string(node.system_type, `${at}.system_type`);
      if (systemType.length > 12) throw new ConfigFileError(`${at}.system_type: at most 12 characters (SMPP 3.4)`);
      const tls = boolean(node.tls ?? false, `${at}.tls`);
      if (node.tls_ca_file !== undefined && !tls) throw new ConfigFileError(`${at}.tls_ca_file: only with tls: true`);
      const tlsCa = node.tls_ca_file === undefined ? undefined : readPem(path.resolve(baseDir, string(node.tls_ca_file, `${at}.tls_ca_file`)), `${at}.tls_ca_file`);
      return {
        name,
        type,
        host: string(node.host, `${at}.host`),
        port: integer(node.port ?? 2775, `${at}.port`, 1, 65_535),
        tls,
        ...(tlsCa !== undefined ? { tlsCa } : {}),
        systemId,
        password,
        systemType,
        binds: integer(node.binds ?? 1, `${at}.binds`, 1, 16),
        window: integer(node.window ?? 10, `${at}.window`, 1, 256),
        throughput: integer(node.throughput ?? 100, `${at}.throughput`, 1, 10_000),
        enquireLinkMs: duration(node.enquire_link ?? "30s", `${at}.enquire_link`),
        timeoutMs,
      };
    }
    case "whatsapp-cloud": {
      const required = (key: string, why: string): Secret => {
        const value = secret(node, key, at, baseDir);
        if (value === undefined) throw new ConfigFileError(`${at}.${key}: required: ${why} (or ${key}_file)`);
        return value;
      };
      const template = object(node.template, `${at}.template`);
      const languages = template.languages ?? ["en_US"];
      if (!Array.isArray(languages) || languages.length === 0 || languages.some((l) => typeof l !== "string" || !WHATSAPP_LANGUAGE.test(l))) {
        throw new ConfigFileError(`${at}.template.languages: expected a list of the languages the template is approved in, as WhatsApp writes them (en_US, nl, pt_BR)`);
      }
      return {
        name,
        type,
        baseUrl: url(node.base_url ?? "https://graph.facebook.com/v21.0", `${at}.base_url`),
        accessToken: required("access_token", "a system user's token to call the Cloud API with"),
        appSecret: required("app_secret", "it signs the status webhooks"),
        verifyToken: required("verify_token", "Meta presents it when the webhook is subscribed"),
        template: { name: string(template.name, `${at}.template.name`), languages: languages as [string, ...string[]] },
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
      throw new ConfigFileError(`${at}.type: unknown provider type "${type}" (expected sandbox, http-route, smtp, voice-http, fcm, twilio, whatsapp-cloud, smpp)`);
  }
}

/** What each provider type can send: a route on another channel would fail every send. */
const PROVIDER_CHANNELS: Readonly<Record<ProviderSettings["type"], readonly Channel[]>> = {
  sandbox: CHANNELS,
  "http-route": ["sms"],
  twilio: ["sms", "voice"],
  "voice-http": ["voice"],
  fcm: ["push"],
  smtp: ["email"],
  "whatsapp-cloud": ["whatsapp"],
  smpp: ["sms"],
};

/** A WhatsApp Business phone number's id in the Graph API: the sender identity of a whatsapp-cloud route. */
const WHATSAPP_PHONE_NUMBER_ID = /^\d{5,20}$/;

function parseRoute(node: Node, at: string, providers: ReadonlyMap<string, ProviderSettings["type"]>): Route {
  const id = string(node.id, `${at}.id`);
  if (!NAME.test(id)) throw new ConfigFileError(`${at}.id: route ids are lower-case letters, digits, - and _`);
  const channel = string(node.channel, `${at}.channel`);
  if (!isChannel(channel)) throw new ConfigFileError(`${at}.channel: expected one of ${CHANNELS.join(", ")}`);
  const provider = string(node.provider, `${at}.provider`);
  const providerType = providers.get(provider);
  if (providerType === undefined) throw new ConfigFileError(`${at}.provider: no provider named "${provider}" under providers`);
  if (!PROVIDER_CHANNELS[providerType].includes(channel)) {
    throw new ConfigFileError(`${at}.channel: provider "${provider}" (${providerType}) sends ${PROVIDER_CHANNELS[providerType].join(" and ")}, not ${channel}`);
  }
  const trafficClass = string(node.traffic_class, `${at}.traffic_class`) as TrafficClass;
  if (!TRAFFIC_CLASSES.includes(trafficClass)) throw new ConfigFileError(`${at}.traffic_class: expected one of ${TRAFFIC_CLASSES.join(", ")}`);
  const countries = node.countries ?? ["*"];
  if (!Array.isArray(countries) || countries.some((c) => typeof c !== "string" || !/^([A-Z]{2}|\*)$/.test(c))) {
    throw new ConfigFileError(`${at}.countries: expected a list of ISO 3166-1 alpha-2 codes (e.g. NL) or "*"`);
  }
  const currency = string(node.currency ?? "EUR", `${at}.currency`);
  if (!/^[A-Z]{3}$/.test(currency)) throw new ConfigFileError(`${at}.currency: expected an ISO 4217 code such as EUR`);
  const prices = object(node.prices ?? { "*": 0 }, `${at}.prices`);
  const pricesMicros: Record<string, number> = {};
  for (const [country, amount] of Object.entries(prices)) {
    if (typeof amount !== "number" || !Number.isFinite(amount) || amount < 0) {
      throw new ConfigFileError(`${at}.prices.${country}: expected a non-negative amount in ${currency}, e.g. 0.072`);
    }
    pricesMicros[country] = Math.round(amount * 1_000_000);
  }
  const sender = string(node.sender, `${at}.sender`);
  const senders = node.senders !== undefined ? senderList(node.senders, `${at}.senders`) : undefined;
  if (providerType === "whatsapp-cloud" && ![sender, ...(senders ?? [])].every((s) => WHATSAPP_PHONE_NUMBER_ID.test(s))) {
    throw new ConfigFileError(`${at}.sender: a whatsapp-cloud route sends from a WhatsApp Business phone number id (digits, as the Graph API names it)`);
  }
  return {
    id,
    channel,
    provider,
    providerRoute: node.provider_route === undefined ? id : String(node.provider_route),
    trafficClass,
    sender,
    ...(senders !== undefined ? { senders } : {}),
    countries: countries as string[],
    currency,
    pricesMicros,
  };
}

/** `<key>` inline, or `<key>_file` naming a file whose trimmed content is the secret. */
/** A file of PEM certificates. */
function readPem(file: string, at: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigFileError(`${at}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) throw new ConfigFileError(`${at}: ${file} holds no PEM certificate`);
  return text;
}

/** A Google service-account key file (JSON, as the Cloud console downloads it). */
function serviceAccount(file: string, at: string): Extract<FcmAuth, { kind: "service-account" }> & { projectId?: string } {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigFileError(`${at}: cannot read ${file} as JSON (${(error as NodeJS.ErrnoException).code ?? "not JSON"})`);
  }
  if (json.type !== "service_account") throw new ConfigFileError(`${at}: ${file} is not a service-account key ("type": "service_account")`);
  const clientEmail = string(json.client_email, `${at} client_email`);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(string(json.private_key, `${at} private_key`));
  } catch (error) {
    if (error instanceof ConfigFileError) throw error;
    throw new ConfigFileError(`${at}: private_key is not a PEM private key`);
  }
  if (privateKey.asymmetricKeyType !== "rsa") throw new ConfigFileError(`${at}: private_key must be an RSA key (RS256)`);
  const tokenUri = url(json.token_uri ?? "https://oauth2.googleapis.com/token", `${at} token_uri`);
  const projectId = typeof json.project_id === "string" && json.project_id !== "" ? json.project_id : undefined;
  return { kind: "service-account", clientEmail, privateKey, tokenUri, ...(projectId ? { projectId } : {}) };
}

function secret(node: Node, key: string, at: string, baseDir: string): Secret | undefined {
  const inline = node[key];
  const file = node[`${key}_file`];
  if (inline !== undefined && file !== undefined) throw new ConfigFileError(`${at}: set ${key} or ${key}_file, not both`);
  if (inline !== undefined) return new Secret(string(inline, `${at}.${key}`));
  if (file === undefined) return undefined;
  const resolved = path.resolve(baseDir, string(file, `${at}.${key}_file`));
  try {
    return new Secret(readFileSync(resolved, "utf8").trim());
  } catch (error) {
    throw new ConfigFileError(`${at}.${key}_file: cannot read ${resolved} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

function object(value: unknown, at: string): Node {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ConfigFileError(`${at}: expected a mapping`);
  return value as Node;
}

function string(value: unknown, at: string): string {
  if (typeof value !== "string" || value.trim() === "") throw new ConfigFileError(`${at}: expected a non-empty string`);
  return value;
}

function boolean(value: unknown, at: string): boolean {
  if (typeof value !== "boolean") throw new ConfigFileError(`${at}: expected true or false`);
  return value;
}

function integer(value: unknown, at: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigFileError(`${at}: expected an integer ${min}–${max}`);
  }
  return value;
}

function duration(value: unknown, at: string): number {
  const ms = typeof value === "string" ? parseDuration(value) : undefined;
  if (ms === undefined || ms < 1) throw new ConfigFileError(`${at}: expected a duration such as 500ms, 15s, 10m`);
  return ms;
}

function url(value: unknown, at: string): string {
  const text = string(value, at);
  try {
    const parsed = new URL(text);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error("not http");
  } catch {
    throw new ConfigFileError(`${at}: expected an http(s) URL, got "${text}"`);
  }
  return text.replace(/\/+$/, "");
}

/** A sender as configured: printable, no control characters, at most 64 characters. */
const SENDER = /^[^\u0000-\u001f\u007f]{1,64}$/;

function senderList(value: unknown, at: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || !SENDER.test(v))) {
    throw new ConfigFileError(`${at}: expected a list of sender ids, numbers or addresses (1–64 printable characters)`);
  }
  return value as string[];
}
