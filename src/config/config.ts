import { parseArgs } from "node:util";
import type { Level } from "pino";
import type { CallerConfig } from "../api/auth.js";
import { CHANNELS, isChannel, type Channel } from "../domain/channel.js";
import { DEFAULT_LIMITS, type AbuseLimits, type WindowLimit } from "../domain/limits.js";
import { MessageCatalogue } from "../domain/messages/catalogue.js";
import { SPEND_DAY_MS } from "../domain/spend-cap.js";
import { MAX_TTL_MS } from "../domain/verification.js";
import { DEFAULT_PUMPING, type PumpingMode, type PumpingSettings } from "../domain/pumping.js";
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from "../transport/limits.js";
import { DEFAULT_POOL, type DatabaseOptions, type PoolSettings } from "../store/database.js";
import { DEFAULT_ROUTE_HEALTH, type RouteHealthSettings } from "../service/route-health.js";
import { DEFAULT_RETENTION, type RetentionWindows } from "../service/retention.js";
import { parseDuration } from "./durations.js";
import { ConfigFileError, loadConfigFile, type ConfigFile, type RoutingConfig } from "./config-file.js";
import { SANDBOX_ROUTING } from "./sandbox-catalogue.js";
import { LOG_LEVELS } from "../telemetry/logger.js";

export const ROLES = ["serve", "worker", "migrate", "dev", "unblock-prefix"] as const;
export type Role = (typeof ROLES)[number];

/** Everything the process needs, parsed and checked once at start-up, then frozen. */
export interface Config {
  readonly role: Role;
  /** `unblock-prefix <prefix>`: the number prefix whose SMS-pumping flag to lift. */
  readonly unblockPrefix?: string;
  readonly host: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  /** The worker's port: grpc.health.v1 (h2c, for native gRPC probes) and `GET /metrics`. */
  readonly healthPort: number;
  readonly database: DatabaseOptions;
  /** A unary RPC still waiting on the database (or another dependency) after this long answers UNAVAILABLE. */
  readonly callTimeoutMs: number;
  /** Timeouts and caps of both ports' connections. */
  readonly connections: ConnectionLimits;
  /** Where `dev` keeps PGlite data and its generated keys. */
  readonly dataDir: string;
  readonly natsUrl?: string;
  /** Replicas of the JetStream streams (OTP_NATS_STREAM_REPLICAS): 3 on a NATS cluster, 1 on a single server. */
  readonly natsStreamReplicas: number;
  /** Base64 32-byte keys; `dev` generates and keeps them in its data dir when unset. */
  readonly codeHashKey?: Buffer;
  readonly codeSealKey?: Buffer;
  /** Undefined: no authentication (`dev` only). */
  readonly callers?: readonly CallerConfig[];
  /** Routes and providers: from the OTP_CONFIG file, else the built-in sandbox catalogue. */
  readonly routing: RoutingConfig;
  /** Message texts: the shipped ones, with the file's `messages` and each caller's own over them. */
  readonly messages: MessageCatalogue;
  readonly workerChannels: readonly Channel[];
  readonly workerConcurrency: number;
  /** A dispatch message not acknowledged within this time is delivered again (JetStream AckWait). */
  readonly workerAckWaitMs: number;
  /** How long a receipt for an unknown provider message id is kept for its attempt. */
  readonly receiptGraceMs: number;
  /** WatchDelivery sends a keep-alive after this long without an event. */
  readonly watchKeepAliveMs: number;
  /** When a route counts as unhealthy and is passed over. */
  readonly routeHealth: RouteHealthSettings;
  /** When a number prefix is flagged as SMS pumping, and what that does. */
  readonly pumping: PumpingSettings;
  readonly devInbox: boolean;
  readonly migrateOnStart: boolean;
  readonly limits: AbuseLimits;
  /** How long rows no longer needed for delivery are kept before the retention loop deletes them. */
  readonly retention: RetentionWindows;
  readonly shutdownGraceMs: number;
  /** On SIGTERM, `serve` answers NOT_SERVING this long before it stops accepting: endpoints drop the pod first. */
  readonly drainDelayMs: number;
  /** The least severe level logged. */
  readonly logLevel: Level;
}

/** A configuration problem, naming the flag or environment variable at fault. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads the command line (`<role> [--flag value]`) and the environment; flags
 * win over environment variables. Throws ConfigError naming the bad key.
 */
export function loadConfig(argv: readonly string[], env: Env): Config {
  const { positionals, values } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      "http-port": { type: "string" },
      "grpc-port": { type: "string" },
      "health-port": { type: "string" },
      host: { type: "string" },
      "data-dir": { type: "string" },
      "database-url": { type: "string" },
      "nats-url": { type: "string" },
      channels: { type: "string" },
      config: { type: "string" },
      "db-pool-max": { type: "string" },
      "db-connect-timeout": { type: "string" },
      "db-statement-timeout": { type: "string" },
      "db-idle-in-transaction-timeout": { type: "string" },
      "call-timeout": { type: "string" },
    },
  });
  const role = positionals[0];
  if (role === undefined || !(ROLES as readonly string[]).includes(role)) {
    throw new ConfigError(`role: expected one of ${ROLES.join(", ")}, got ${role ?? "nothing"}`);
  }
  const isDev = role === "dev";
  const setting = (flag: keyof typeof values, name: string): [string, string | undefined] => {
    const fromFlag = values[flag];
    return typeof fromFlag === "string" ? [`--${flag}`, fromFlag] : [name, env[name]];
  };

  const dataDir = setting("data-dir", "OTP_DATA_DIR")[1] || "./.data";
  const databaseUrl = setting("database-url", "OTP_DATABASE_URL")[1];
  const unblockPrefix = role === "unblock-prefix" ? parsePrefixArgument(positionals[1]) : undefined;
  const oneOff = role === "migrate" || role === "unblock-prefix";
  if (!databaseUrl && !isDev && !oneOff) {
    throw new ConfigError("OTP_DATABASE_URL (--database-url): required for the serve and worker roles");
  }
  const natsUrl = setting("nats-url", "OTP_NATS_URL")[1] || undefined;
  const file = loadFile(...setting("config", "OTP_CONFIG"));
  const routing = file.routing;
  const callers = isDev && file.callers === undefined ? undefined : mergeCallers(file.callers, parseCallers(env.OTP_CALLERS));
  if (role === "serve" && (callers === undefined || callers.length === 0)) {
    throw new ConfigError("OTP_CALLERS: at least one caller (id:sha256-of-token) is required to serve");
  }
  if (role === "worker" && !natsUrl) {
    throw new ConfigError("OTP_NATS_URL (--nats-url): required for the worker role, which consumes dispatch messages from JetStream");
  }
  const workerAckWaitMs = parseDurationSetting("OTP_WORKER_ACK_WAIT", env.OTP_WORKER_ACK_WAIT, 30_000);
  const slow = routing.providers.find((p) => "timeoutMs" in p && p.timeoutMs >= workerAckWaitMs);
  if (slow) {
    throw new ConfigError(`OTP_WORKER_ACK_WAIT: must be longer than provider ${slow.name}'s timeout, or a slow send is redelivered while it runs`);
  }
  const codeHashKey = parseKey("OTP_CODE_HASH_KEY", env.OTP_CODE_HASH_KEY);
  const codeSealKey = parseKey("OTP_CODE_SEAL_KEY", env.OTP_CODE_SEAL_KEY);
  if (!isDev && !oneOff && (codeHashKey === undefined || codeSealKey === undefined)) {
    throw new ConfigError(`${codeHashKey ? "OTP_CODE_SEAL_KEY" : "OTP_CODE_HASH_KEY"}: required (base64 of 32 random bytes)`);
  }

  const watchKeepAliveMs = parseDurationSetting("OTP_WATCH_KEEPALIVE", env.OTP_WATCH_KEEPALIVE, 15_000);
  const routeHealthWindowMs = parseDurationSetting("OTP_ROUTE_HEALTH_WINDOW", env.OTP_ROUTE_HEALTH_WINDOW, DEFAULT_ROUTE_HEALTH.windowMs);
  // The limits that can be turned off are set below, each from its default unless it says `off`.
  const { sendsPerDevice: _device, sendsPerCallerCountry: _country, sendsPerNumberRange: _range, ...alwaysOn } = DEFAULT_LIMITS;
  const limits: AbuseLimits = {
    ...alwaysOn,
    maxWrongCodes: parseInteger("OTP_MAX_WRONG_CODES", env.OTP_MAX_WRONG_CODES, DEFAULT_LIMITS.maxWrongCodes, 1, 20),
    numberPrefixDigits: parseInteger("OTP_NUMBER_PREFIX_DIGITS", env.OTP_NUMBER_PREFIX_DIGITS, DEFAULT_LIMITS.numberPrefixDigits, 2, 12),
    sendsPerDestination: parseWindow("OTP_SENDS_PER_DESTINATION", env.OTP_SENDS_PER_DESTINATION, DEFAULT_LIMITS.sendsPerDestination),
    sendsPerCaller: parseWindow("OTP_SENDS_PER_CALLER", env.OTP_SENDS_PER_CALLER, DEFAULT_LIMITS.sendsPerCaller),
    sendsPerClientIp: parseWindow("OTP_SENDS_PER_CLIENT_IP", env.OTP_SENDS_PER_CLIENT_IP, DEFAULT_LIMITS.sendsPerClientIp),
    ...optionalWindow("sendsPerDevice", "OTP_SENDS_PER_DEVICE", env.OTP_SENDS_PER_DEVICE, DEFAULT_LIMITS.sendsPerDevice),
    ...optionalWindow("sendsPerCallerCountry", "OTP_SENDS_PER_CALLER_COUNTRY", env.OTP_SENDS_PER_CALLER_COUNTRY, DEFAULT_LIMITS.sendsPerCallerCountry),
    ...optionalWindow("sendsPerNumberRange", "OTP_SENDS_PER_NUMBER_RANGE", env.OTP_SENDS_PER_NUMBER_RANGE, DEFAULT_LIMITS.sendsPerNumberRange),
    ...(env.OTP_SENDS_PER_DESTINATION_GLOBAL
      ? { sendsPerDestinationGlobal: parseWindow("OTP_SENDS_PER_DESTINATION_GLOBAL", env.OTP_SENDS_PER_DESTINATION_GLOBAL, DEFAULT_LIMITS.sendsPerDestination) }
      : {}),
  };

  const conversion = parseConversion(env);
  const pumping = parsePumping(env);
  const config: Config = {
    role: role as Role,
    ...(unblockPrefix ? { unblockPrefix } : {}),
    host: setting("host", "OTP_HOST")[1] || (isDev ? "127.0.0.1" : "0.0.0.0"),
    httpPort: parsePort(...setting("http-port", "OTP_HTTP_PORT"), 8080),
    grpcPort: parsePort(...setting("grpc-port", "OTP_GRPC_PORT"), 9090),
    healthPort: parsePort(...setting("health-port", "OTP_HEALTH_PORT"), 8081),
    database: databaseUrl ? { kind: "postgres", url: databaseUrl, pool: parsePool(setting) } : { kind: "pglite", dataDir: `${dataDir}/pglite` },
    callTimeoutMs: parseDurationSetting(...setting("call-timeout", "OTP_CALL_TIMEOUT"), 9_000),
    dataDir,
    ...(natsUrl ? { natsUrl } : {}),
    ...(codeHashKey ? { codeHashKey } : {}),
    ...(codeSealKey ? { codeSealKey } : {}),
    ...(callers ? { callers } : {}),
    routing,
    messages: new MessageCatalogue(file.messages, new Map((callers ?? []).flatMap((c) => (c.messages ? [[c.id, c.messages] as const] : [])))),
    workerChannels: parseChannels(...setting("channels", "OTP_WORKER_CHANNELS")),
    workerConcurrency: parseInteger("OTP_WORKER_CONCURRENCY", env.OTP_WORKER_CONCURRENCY, 16, 1, 1024),
    workerAckWaitMs,
    receiptGraceMs: parseDurationSetting("OTP_RECEIPT_GRACE", env.OTP_RECEIPT_GRACE, 600_000),
    watchKeepAliveMs,
    routeHealth: {
      windowMs: routeHealthWindowMs,
      minSamples: parseInteger("OTP_ROUTE_HEALTH_MIN_SAMPLES", env.OTP_ROUTE_HEALTH_MIN_SAMPLES, DEFAULT_ROUTE_HEALTH.minSamples, 1, 100_000),
      minDeliveryRate: parseRate("OTP_ROUTE_MIN_DELIVERY_RATE", env.OTP_ROUTE_MIN_DELIVERY_RATE, DEFAULT_ROUTE_HEALTH.minDeliveryRate),
      conversion,
    },
    pumping,
    devInbox: isDev || parseBoolean("OTP_DEV_INBOX", env.OTP_DEV_INBOX, false),
    migrateOnStart: isDev || parseBoolean("OTP_MIGRATE_ON_START", env.OTP_MIGRATE_ON_START, false),
    limits,
    retention: parseRetention(env, limits, Math.max(routeHealthWindowMs, conversion.baselineWindowMs, pumping.windowMs), callers),
    connections: parseConnectionLimits(env, watchKeepAliveMs),
    natsStreamReplicas: parseInteger("OTP_NATS_STREAM_REPLICAS", env.OTP_NATS_STREAM_REPLICAS, 1, 1, 5),
    drainDelayMs: Math.min(60_000, parseDurationSetting("OTP_DRAIN_DELAY", env.OTP_DRAIN_DELAY, 0, 0)),
    shutdownGraceMs: parseInteger("OTP_SHUTDOWN_GRACE_MS", env.OTP_SHUTDOWN_GRACE_MS, 10_000, 0, 300_000),
    logLevel: parseLogLevel(env.OTP_LOG_LEVEL),
  };
  return Object.freeze(config);
}

/** The PostgreSQL pool: its size, and the waits that bound a call's time on the database. */
function parsePool(setting: (flag: "db-pool-max" | "db-connect-timeout" | "db-statement-timeout" | "db-idle-in-transaction-timeout", name: string) => [string, string | undefined]): PoolSettings {
  return {
    maxConnections: parseInteger(...setting("db-pool-max", "OTP_DB_POOL_MAX"), DEFAULT_POOL.maxConnections, 1, 1_000),
    connectTimeoutMs: parseDurationSetting(...setting("db-connect-timeout", "OTP_DB_CONNECT_TIMEOUT"), DEFAULT_POOL.connectTimeoutMs),
    statementTimeoutMs: parseDurationSetting(...setting("db-statement-timeout", "OTP_DB_STATEMENT_TIMEOUT"), DEFAULT_POOL.statementTimeoutMs),
    idleInTransactionTimeoutMs: parseDurationSetting(...setting("db-idle-in-transaction-timeout", "OTP_DB_IDLE_IN_TRANSACTION_TIMEOUT"), DEFAULT_POOL.idleInTransactionTimeoutMs),
  };
}

/** Connection timeouts and caps; an idle connection must outlast a stream's keep-alive interval. */
function parseConnectionLimits(env: Env, watchKeepAliveMs: number): ConnectionLimits {
  const d = DEFAULT_CONNECTION_LIMITS;
  const limits: ConnectionLimits = {
    headersTimeoutMs: parseDurationSetting("OTP_HEADERS_TIMEOUT", env.OTP_HEADERS_TIMEOUT, d.headersTimeoutMs),
    requestTimeoutMs: parseDurationSetting("OTP_REQUEST_TIMEOUT", env.OTP_REQUEST_TIMEOUT, d.requestTimeoutMs),
    idleTimeoutMs: parseDurationSetting("OTP_IDLE_TIMEOUT", env.OTP_IDLE_TIMEOUT, d.idleTimeoutMs),
    keepAliveTimeoutMs: parseDurationSetting("OTP_KEEPALIVE_TIMEOUT", env.OTP_KEEPALIVE_TIMEOUT, d.keepAliveTimeoutMs),
    maxConnections: parseInteger("OTP_MAX_CONNECTIONS", env.OTP_MAX_CONNECTIONS, d.maxConnections, 1, 1_000_000),
    maxStreamsPerConnection: parseInteger("OTP_MAX_STREAMS_PER_CONNECTION", env.OTP_MAX_STREAMS_PER_CONNECTION, d.maxStreamsPerConnection, 1, 100_000),
    maxConnectionAgeMs: parseDurationSetting("OTP_MAX_CONNECTION_AGE", env.OTP_MAX_CONNECTION_AGE, d.maxConnectionAgeMs),
  };
  if (limits.idleTimeoutMs <= watchKeepAliveMs * 2) {
    throw new ConfigError(`OTP_IDLE_TIMEOUT: must be more than twice OTP_WATCH_KEEPALIVE (${watchKeepAliveMs / 1000} s), or idle-looking streams are cut`);
  }
  return limits;
}

/**
 * Retention windows; a counter must outlive the longest limit window it counts
 * (route outcome rollups: the route health window), and a published dispatch the longest code.
 */
/** Conversion-driven route health (see domain/conversion.ts). */
function parseConversion(env: Env): RouteHealthSettings["conversion"] {
  const d = DEFAULT_ROUTE_HEALTH.conversion;
  const conversion = {
    ...d,
    recentWindowMs: parseDurationSetting("OTP_ROUTE_CONVERSION_WINDOW", env.OTP_ROUTE_CONVERSION_WINDOW, d.recentWindowMs, 60_000),
    baselineWindowMs: parseDurationSetting("OTP_ROUTE_CONVERSION_BASELINE", env.OTP_ROUTE_CONVERSION_BASELINE, d.baselineWindowMs, 60_000),
    dropRatio: parseRate("OTP_ROUTE_CONVERSION_DROP", env.OTP_ROUTE_CONVERSION_DROP, d.dropRatio),
    coolOffMs: parseDurationSetting("OTP_ROUTE_COOL_OFF", env.OTP_ROUTE_COOL_OFF, d.coolOffMs),
    probeShare: parseRate("OTP_ROUTE_PROBE_SHARE", env.OTP_ROUTE_PROBE_SHARE, d.probeShare),
  };
  if (conversion.baselineWindowMs <= conversion.recentWindowMs) {
    throw new ConfigError("OTP_ROUTE_CONVERSION_BASELINE: must be longer than OTP_ROUTE_CONVERSION_WINDOW, which it is compared with");
  }
  return conversion;
}

const E164_PREFIX = /^\+[1-9][0-9]{0,14}$/;

function parsePrefixArgument(value: string | undefined): string {
  if (value === undefined || !E164_PREFIX.test(value)) {
    throw new ConfigError(`unblock-prefix: expected a number prefix as flagged (+ and digits, e.g. +316123), got ${value ?? "nothing"}`);
  }
  return value;
}

/** The SMS-pumping detector (see domain/pumping.ts). */
function parsePumping(env: Env): PumpingSettings {
  const d = DEFAULT_PUMPING;
  const mode = env.OTP_PUMPING_MODE?.trim() || d.mode;
  if (!(["block", "monitor", "off"] as const).includes(mode as PumpingMode)) {
    throw new ConfigError(`OTP_PUMPING_MODE: expected block, monitor or off, got "${mode}"`);
  }
  const allow = (env.OTP_PUMPING_ALLOW ?? "").split(",").map((p) => p.trim()).filter((p) => p !== "");
  const bad = allow.find((p) => !E164_PREFIX.test(p));
  if (bad !== undefined) throw new ConfigError(`OTP_PUMPING_ALLOW: "${bad}" is not an E.164 prefix (+ and digits, e.g. +3161234)`);
  return {
    mode: mode as PumpingMode,
    windowMs: parseDurationSetting("OTP_PUMPING_WINDOW", env.OTP_PUMPING_WINDOW, d.windowMs, 60_000),
    minSends: parseInteger("OTP_PUMPING_MIN_SENDS", env.OTP_PUMPING_MIN_SENDS, d.minSends, 1, 1_000_000),
    conversionRatio: parseRate("OTP_PUMPING_CONVERSION_RATIO", env.OTP_PUMPING_CONVERSION_RATIO, d.conversionRatio),
    blockMs: parseDurationSetting("OTP_PUMPING_BLOCK", env.OTP_PUMPING_BLOCK, d.blockMs, 60_000),
    allow,
  };
}

function parseRetention(env: Env, limits: AbuseLimits, longestCountWindowMs: number, callers: readonly CallerConfig[] | undefined): RetentionWindows {
  const retention: RetentionWindows = {
    publishedOutboxMs: parseDurationSetting("OTP_RETAIN_PUBLISHED_OUTBOX", env.OTP_RETAIN_PUBLISHED_OUTBOX, DEFAULT_RETENTION.publishedOutboxMs),
    windowCountersMs: parseDurationSetting("OTP_RETAIN_WINDOW_COUNTERS", env.OTP_RETAIN_WINDOW_COUNTERS, DEFAULT_RETENTION.windowCountersMs),
    verificationsMs: parseDurationSetting("OTP_RETAIN_VERIFICATIONS", env.OTP_RETAIN_VERIFICATIONS, DEFAULT_RETENTION.verificationsMs),
  };
  const longestWindow = Math.max(
    limits.sendsPerDestination.windowMs,
    limits.sendsPerCaller.windowMs,
    limits.sendsPerClientIp.windowMs,
    limits.sendsPerDestinationGlobal?.windowMs ?? 0,
    limits.sendsPerDevice?.windowMs ?? 0,
    limits.sendsPerCallerCountry?.windowMs ?? 0,
    limits.sendsPerNumberRange?.windowMs ?? 0,
  );
  // A sliding window reads the window before the current one too.
  if (retention.windowCountersMs < 2 * longestWindow) {
    throw new ConfigError(`OTP_RETAIN_WINDOW_COUNTERS: must be at least twice the longest send-limit window (${(2 * longestWindow) / 1000} s), or limits would forget counts`);
  }
  if (retention.windowCountersMs < longestCountWindowMs) {
    throw new ConfigError(
      `OTP_RETAIN_WINDOW_COUNTERS: must be at least the longest of OTP_ROUTE_HEALTH_WINDOW, OTP_ROUTE_CONVERSION_BASELINE and OTP_PUMPING_WINDOW (${longestCountWindowMs / 1000} s), or route health and pumping detection would forget counts`,
    );
  }
  // Without NATS, a restart re-dispatches queued attempts from their outbox rows: keep them while a code can live.
  const capped = callers?.find((c) => c.dailySpendCap !== undefined);
  if (capped !== undefined && retention.windowCountersMs < SPEND_DAY_MS) {
    throw new ConfigError(`OTP_RETAIN_WINDOW_COUNTERS: must be at least 24 h while a caller has a daily_spend_cap (${capped.id}), or the day's spend would be forgotten`);
  }
  if (retention.publishedOutboxMs < MAX_TTL_MS) {
    throw new ConfigError(`OTP_RETAIN_PUBLISHED_OUTBOX: must be at least ${MAX_TTL_MS / 60_000} minutes, the longest a code lives`);
  }
  return retention;
}

/** A limit that can be turned off: `off`, or `count/duration`; its default when unset. */
function optionalWindow<K extends keyof AbuseLimits>(key: K, name: string, value: string | undefined, fallback: WindowLimit | undefined): Partial<Record<K, WindowLimit>> {
  if (value?.trim() === "off") return {};
  const limit = value === undefined || value.trim() === "" ? fallback : parseWindow(name, value, fallback ?? { max: 1, windowMs: 60_000 });
  return limit === undefined ? {} : ({ [key]: limit } as Partial<Record<K, WindowLimit>>);
}

function parseLogLevel(value: string | undefined): Level {
  if (value === undefined || value.trim() === "") return "info";
  const level = value.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new ConfigError(`OTP_LOG_LEVEL: expected one of ${LOG_LEVELS.join(", ")}, got ${value}`);
  return level as Level;
}

function parsePort(name: string, value: string | undefined, fallback: number): number {
  return parseInteger(name, value, fallback, 0, 65_535);
}

function parseInteger(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name}: expected an integer ${min}–${max}, got "${value}"`);
  return n;
}

function parseDurationSetting(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined || value === "") return fallback;
  const ms = parseDuration(value);
  if (ms === undefined || ms < min) throw new ConfigError(`${name}: expected a duration such as 500ms, 30s, 10m, got "${value}"`);
  return ms;
}

/** The configuration file when one is named; otherwise one sandbox route per channel and the default policy. */
function loadFile(name: string, file: string | undefined): ConfigFile {
  if (file === undefined || file === "") return { routing: SANDBOX_ROUTING };
  try {
    return loadConfigFile(file);
  } catch (error) {
    if (error instanceof ConfigFileError) throw new ConfigError(`${name} ${error.message}`);
    throw error;
  }
}

function parseRate(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new ConfigError(`${name}: expected a share between 0 and 1, e.g. 0.5, got "${value}"`);
  return n;
}

function parseBoolean(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === "") return fallback;
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw new ConfigError(`${name}: expected true or false, got "${value}"`);
}

function parseKey(name: string, value: string | undefined): Buffer | undefined {
  if (value === undefined || value === "") return undefined;
  const key = Buffer.from(value, "base64");
  if (key.length !== 32) throw new ConfigError(`${name}: expected base64 of exactly 32 bytes, got ${key.length} bytes`);
  return key;
}

/** "5/10m" → at most 5 per 10 minutes. */
function parseWindow(name: string, value: string | undefined, fallback: WindowLimit): WindowLimit {
  if (value === undefined || value === "") return fallback;
  const [max, window] = value.split("/");
  const windowMs = window ? parseDuration(window) : undefined;
  const n = Number(max);
  if (!Number.isInteger(n) || n < 1 || windowMs === undefined || windowMs < 1) {
    throw new ConfigError(`${name}: expected "<count>/<duration>", e.g. "5/10m", got "${value}"`);
  }
  return { max: n, windowMs };
}

function parseChannels(name: string, value: string | undefined): Channel[] {
  if (value === undefined || value === "") return [...CHANNELS];
  const channels = value.split(",").map((c) => c.trim());
  const bad = channels.find((c) => !isChannel(c));
  if (bad !== undefined) throw new ConfigError(`${name}: unknown channel "${bad}" (expected ${CHANNELS.join(", ")})`);
  return channels as Channel[];
}

/** Callers from the file and from OTP_CALLERS together; one id may appear in only one of them. */
function mergeCallers(fromFile: readonly CallerConfig[] | undefined, fromEnv: readonly CallerConfig[] | undefined): CallerConfig[] | undefined {
  if (fromFile === undefined && fromEnv === undefined) return undefined;
  const all = [...(fromFile ?? []), ...(fromEnv ?? [])];
  const twice = all.find((c, i) => all.findIndex((o) => o.id === c.id) !== i);
  if (twice) throw new ConfigError(`OTP_CALLERS: caller "${twice.id}" is also configured in the configuration file`);
  return all;
}

/** "checkout:<sha256 hex>,billing:<sha256 hex>" */
function parseCallers(value: string | undefined): CallerConfig[] | undefined {
  if (value === undefined || value === "") return undefined;
  return value.split(",").map((entry) => {
    const [id, digest] = entry.trim().split(":");
    if (!id || !/^[a-z0-9][a-z0-9_-]{0,63}$/.test(id) || !digest || !/^[0-9a-f]{64}$/.test(digest)) {
      throw new ConfigError(`OTP_CALLERS: expected "<caller-id>:<sha256 hex of its token>", got "${entry.slice(0, 20)}…"`);
    }
    return { id, tokenSha256: digest };
  });
}
