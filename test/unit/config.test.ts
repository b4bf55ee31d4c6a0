import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/config.js";

const key = Buffer.alloc(32, 7).toString("base64");
const digest = "a".repeat(64);
const serveEnv = {
  OTP_DATABASE_URL: "postgres://localhost/otp",
  OTP_CALLERS: `checkout:${digest}`,
  OTP_CODE_HASH_KEY: key,
  OTP_CODE_SEAL_KEY: key,
};

describe("loadConfig", () => {
  it("runs dev on embedded defaults: PGlite in ./.data, ports 8080/9090, no auth", () => {
    const config = loadConfig(["dev"], {});
    expect(config).toMatchObject({ role: "dev", httpPort: 8080, grpcPort: 9090, host: "127.0.0.1", devInbox: true, migrateOnStart: true });
    expect(config.database).toEqual({ kind: "pglite", dataDir: "./.data/pglite" });
    expect(config.callers).toBeUndefined();
  });

  it("takes flags over environment variables", () => {
    const config = loadConfig(["dev", "--http-port", "18080", "--data-dir", "/tmp/x"], { OTP_HTTP_PORT: "9999", OTP_GRPC_PORT: "19090" });
    expect(config).toMatchObject({ httpPort: 18080, grpcPort: 19090, dataDir: "/tmp/x" });
  });

  it("takes retention windows in days, hours or minutes, and refuses windows shorter than what they must outlive", () => {
    const shortBaseline = { OTP_ROUTE_CONVERSION_BASELINE: "1h", OTP_SENDS_PER_DEVICE: "off" };
    const config = loadConfig(["serve"], { ...serveEnv, ...shortBaseline, OTP_RETAIN_VERIFICATIONS: "7d", OTP_RETAIN_PUBLISHED_OUTBOX: "2h", OTP_RETAIN_WINDOW_COUNTERS: "1h" });
    expect(config.retention).toEqual({ verificationsMs: 7 * 86_400_000, publishedOutboxMs: 7_200_000, windowCountersMs: 3_600_000 });
    expect(() => loadConfig(["serve"], { ...serveEnv, ...shortBaseline, OTP_SENDS_PER_DESTINATION: "5/2h", OTP_RETAIN_WINDOW_COUNTERS: "3h" })).toThrow("OTP_RETAIN_WINDOW_COUNTERS: must be at least twice the longest send-limit window (14400 s)");
    expect(() => loadConfig(["serve"], { ...serveEnv, OTP_RETAIN_PUBLISHED_OUTBOX: "5m" })).toThrow("OTP_RETAIN_PUBLISHED_OUTBOX: must be at least 10 minutes");
    expect(() => loadConfig(["serve"], { ...serveEnv, ...shortBaseline, OTP_ROUTE_HEALTH_WINDOW: "2h", OTP_RETAIN_WINDOW_COUNTERS: "1h" })).toThrow(
      "OTP_RETAIN_WINDOW_COUNTERS: must be at least the longest of OTP_ROUTE_HEALTH_WINDOW, OTP_ROUTE_CONVERSION_BASELINE and OTP_PUMPING_WINDOW (7200 s)",
    );
    // The conversion baseline's default (24 h) needs the counters' default (24 h).
    expect(() => loadConfig(["serve"], { ...serveEnv, OTP_RETAIN_WINDOW_COUNTERS: "12h" })).toThrow("(86400 s)");
  });

  it("reads the pumping defence, the conversion circuit and the velocity limits, and refuses what makes no sense", () => {
    const defaults = loadConfig(["serve"], serveEnv);
    expect(defaults.pumping).toEqual({ mode: "block", windowMs: 600_000, minSends: 30, conversionRatio: 0.25, blockMs: 43_200_000, allow: [] });
    expect(defaults.limits).toMatchObject({ sendsPerDevice: { max: 10, windowMs: 3_600_000 }, sendsPerNumberRange: { max: 10, windowMs: 600_000 } });
    expect(defaults.limits.sendsPerCallerCountry).toBeUndefined();
    const tuned = loadConfig(["serve"], {
      ...serveEnv,
      OTP_PUMPING_MODE: "monitor",
      OTP_PUMPING_ALLOW: "+3161234, +44",
      OTP_PUMPING_BLOCK: "1h",
      OTP_ROUTE_CONVERSION_WINDOW: "5m",
      OTP_ROUTE_COOL_OFF: "10m",
      OTP_ROUTE_PROBE_SHARE: "0.2",
      OTP_SENDS_PER_NUMBER_RANGE: "off",
      OTP_SENDS_PER_CALLER_COUNTRY: "500/1h",
    });
    expect(tuned.pumping).toMatchObject({ mode: "monitor", allow: ["+3161234", "+44"], blockMs: 3_600_000 });
    expect(tuned.routeHealth.conversion).toMatchObject({ recentWindowMs: 300_000, coolOffMs: 600_000, probeShare: 0.2 });
    expect(tuned.limits.sendsPerNumberRange).toBeUndefined();
    expect(tuned.limits.sendsPerCallerCountry).toEqual({ max: 500, windowMs: 3_600_000 });
    expect(() => loadConfig(["serve"], { ...serveEnv, OTP_PUMPING_MODE: "loud" })).toThrow('OTP_PUMPING_MODE: expected block, monitor or off, got "loud"');
    expect(() => loadConfig(["serve"], { ...serveEnv, OTP_PUMPING_ALLOW: "+31,0044" })).toThrow('OTP_PUMPING_ALLOW: "0044" is not an E.164 prefix');
    expect(() => loadConfig(["serve"], { ...serveEnv, OTP_ROUTE_CONVERSION_WINDOW: "2h", OTP_ROUTE_CONVERSION_BASELINE: "1h" })).toThrow(
      "OTP_ROUTE_CONVERSION_BASELINE: must be longer than OTP_ROUTE_CONVERSION_WINDOW",
    );
    expect(loadConfig(["unblock-prefix", "+316555"], { OTP_DATABASE_URL: "postgres://localhost/otp" }).unblockPrefix).toBe("+316555");
    expect(() => loadConfig(["unblock-prefix"], {})).toThrow("unblock-prefix: expected a number prefix as flagged");
  });

  it("sizes the database pool and bounds its waits from flags or the environment", () => {
    expect(loadConfig(["serve"], serveEnv).database).toEqual({
      kind: "postgres",
      url: "postgres://localhost/otp",
      pool: { maxConnections: 10, connectTimeoutMs: 3_000, statementTimeoutMs: 5_000, idleInTransactionTimeoutMs: 10_000 },
    });
    const config = loadConfig(["serve", "--db-pool-max", "40", "--db-statement-timeout", "2s"], { ...serveEnv, OTP_DB_POOL_MAX: "5", OTP_DB_CONNECT_TIMEOUT: "1s", OTP_DB_IDLE_IN_TRANSACTION_TIMEOUT: "30s", OTP_CALL_TIMEOUT: "4s" });
    expect(config.database).toMatchObject({ pool: { maxConnections: 40, connectTimeoutMs: 1_000, statementTimeoutMs: 2_000, idleInTransactionTimeoutMs: 30_000 } });
    expect(config.callTimeoutMs).toBe(4_000);
    expect(() => loadConfig(["serve"], { ...serveEnv, OTP_DB_POOL_MAX: "0" })).toThrow("OTP_DB_POOL_MAX: expected an integer 1–1000");
  });

  it("logs at info unless OTP_LOG_LEVEL says otherwise, and refuses a level pino does not have", () => {
    expect(loadConfig(["dev"], {}).logLevel).toBe("info");
    expect(loadConfig(["dev"], { OTP_LOG_LEVEL: "Debug" }).logLevel).toBe("debug");
    expect(() => loadConfig(["dev"], { OTP_LOG_LEVEL: "verbose" })).toThrow("OTP_LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, got verbose");
  });

  it("returns a frozen object", () => {
    expect(Object.isFrozen(loadConfig(["dev"], {}))).toBe(true);
  });

  it("configures serve from the environment", () => {
    const config = loadConfig(["serve"], { ...serveEnv, OTP_SENDS_PER_DESTINATION: "3/1m" });
    expect(config.database).toMatchObject({ kind: "postgres", url: "postgres://localhost/otp" });
    expect(config.callers).toEqual([{ id: "checkout", tokenSha256: digest }]);
    expect(config.limits.sendsPerDestination).toEqual({ max: 3, windowMs: 60_000 });
    expect(config.host).toBe("0.0.0.0");
  });

  it("configures a worker: NATS, channels, ack wait; no callers needed", () => {
    const config = loadConfig(["worker", "--channels", "sms,email"], { ...serveEnv, OTP_CALLERS: "", OTP_NATS_URL: "nats://127.0.0.1:4222", OTP_WORKER_ACK_WAIT: "20s" });
    expect(config).toMatchObject({ role: "worker", natsUrl: "nats://127.0.0.1:4222", workerChannels: ["sms", "email"], workerAckWaitMs: 20_000 });
  });

  it.each([
    [["serve"], { ...serveEnv, OTP_DATABASE_URL: "" }, "OTP_DATABASE_URL"],
    [["serve"], { ...serveEnv, OTP_CALLERS: "" }, "OTP_CALLERS"],
    [["serve"], { ...serveEnv, OTP_CALLERS: "checkout:short" }, "OTP_CALLERS"],
    [["serve"], { ...serveEnv, OTP_CODE_SEAL_KEY: "" }, "OTP_CODE_SEAL_KEY"],
    [["serve"], { ...serveEnv, OTP_CODE_HASH_KEY: "c2hvcnQ=" }, "OTP_CODE_HASH_KEY"],
    [["dev"], { OTP_HTTP_PORT: "http" }, "OTP_HTTP_PORT"],
    [["dev", "--grpc-port", "70000"], {}, "--grpc-port"],
    [["dev"], { OTP_SENDS_PER_CALLER: "lots" }, "OTP_SENDS_PER_CALLER"],
    [["dev"], { OTP_WORKER_CHANNELS: "sms,fax" }, "OTP_WORKER_CHANNELS"],
    [["fly"], {}, "role"],
    [["worker"], { ...serveEnv }, "OTP_NATS_URL"],
    [["dev"], { OTP_WATCH_KEEPALIVE: "soon" }, "OTP_WATCH_KEEPALIVE"],
    [["dev"], { OTP_RECEIPT_GRACE: "0s" }, "OTP_RECEIPT_GRACE"],
    [["dev"], { OTP_CONFIG: "/nonexistent/otp.yaml" }, "OTP_CONFIG /nonexistent/otp.yaml: cannot read"],
  ])("fails fast naming the bad key: %j %j", (argv, env, named) => {
    expect(() => loadConfig(argv, env)).toThrow(ConfigError);
    expect(() => loadConfig(argv, env)).toThrow(named);
  });
});
