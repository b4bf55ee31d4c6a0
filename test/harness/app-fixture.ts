import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient, createRouterTransport, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { inject } from "vitest";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import { startApp, type RunningApp } from "../../src/app.js";
import type { Config } from "../../src/config/config.js";
import { SHIPPED_CATALOGUE } from "../../src/domain/messages/catalogue.js";
import { SANDBOX_ROUTING } from "../../src/config/sandbox-catalogue.js";
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from "../../src/transport/limits.js";
import { DEFAULT_RETENTION } from "../../src/service/retention.js";
import { DEFAULT_ROUTE_HEALTH } from "../../src/service/route-health.js";
import { CHANNELS } from "../../src/domain/channel.js";
import { DEFAULT_LIMITS, type AbuseLimits } from "../../src/domain/limits.js";
import { DEFAULT_PUMPING } from "../../src/domain/pumping.js";
import { silentLogger } from "../../src/telemetry/logger.js";
import { waitFor } from "./free-port.js";
import { createTestDatabase } from "./postgres.js";
import { TEST_KEYS } from "./service-fixture.js";

export const TOKENS = { checkout: "checkout-secret-token", billing: "billing-secret-token" } as const;

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** `serve` on a fresh Postgres database, on free loopback ports, tokens for two callers. */
export async function startTestApp(options: { limits?: Partial<AbuseLimits>; watchKeepAliveMs?: number; connections?: Partial<ConnectionLimits> } = {}): Promise<RunningApp> {
  const config: Config = {
    role: "serve",
    host: "127.0.0.1",
    httpPort: 0,
    grpcPort: 0,
    healthPort: 0,
    natsStreamReplicas: 1,
    drainDelayMs: 0,
    database: { kind: "postgres", url: await createTestDatabase(inject("pgAdminUrl")) },
    dataDir: mkdtempSync(path.join(tmpdir(), "otp-app-")),
    codeHashKey: TEST_KEYS.hashKey,
    codeSealKey: TEST_KEYS.sealKey,
    callers: Object.entries(TOKENS).map(([id, token]) => ({ id, tokenSha256: sha256(token) })),
    routing: SANDBOX_ROUTING,
    messages: SHIPPED_CATALOGUE,
    workerChannels: [...CHANNELS],
    workerConcurrency: 4,
    workerAckWaitMs: 30_000,
    receiptGraceMs: 600_000,
    watchKeepAliveMs: options.watchKeepAliveMs ?? 15_000,
    routeHealth: DEFAULT_ROUTE_HEALTH,
    pumping: DEFAULT_PUMPING,
    devInbox: true,
    migrateOnStart: true,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    retention: DEFAULT_RETENTION,
    callTimeoutMs: 9_000,
    connections: { ...DEFAULT_CONNECTION_LIMITS, ...options.connections },
    shutdownGraceMs: 2_000,
    logLevel: "info",
  };
  return startApp(config, { log: silentLogger });
}

/** Every way a client reaches the one OtpService implementation. */
export const TRANSPORTS: ReadonlyArray<{ name: string; make: (app: RunningApp) => Transport }> = [
  { name: "in-memory router", make: (app) => createRouterTransport((router) => router.service(OtpService, app.core.otp)) },
  { name: "gRPC on the grpc-js port", make: (app) => createGrpcTransport({ baseUrl: `http://127.0.0.1:${app.grpcPort}` }) },
  { name: "Connect over HTTP/1.1 on the HTTP port", make: (app) => createConnectTransport({ baseUrl: `http://127.0.0.1:${app.httpPort}`, httpVersion: "1.1" }) },
  { name: "gRPC-Web over h2c on the HTTP port", make: (app) => createGrpcWebTransport({ baseUrl: `http://127.0.0.1:${app.httpPort}`, httpVersion: "2" }) },
  { name: "gRPC over h2c on the HTTP port", make: (app) => createGrpcTransport({ baseUrl: `http://127.0.0.1:${app.httpPort}` }) },
];

export type OtpClient = Client<typeof OtpService>;

export function otpClient(transport: Transport): OtpClient {
  return createClient(OtpService, transport);
}

export function auth(caller: keyof typeof TOKENS) {
  return { headers: { authorization: `Bearer ${TOKENS[caller]}` } };
}

/** The code from the newest dev inbox message of a verification, once it has arrived. */
export async function codeFromInbox(app: RunningApp, verificationId: string): Promise<string> {
  let code: string | undefined;
  await waitFor(
    `a message for ${verificationId}`,
    async () => {
      const message = app.core.inbox.list().find((m) => m.verificationId === verificationId);
      code = message?.body.match(/^(\d{4,10}) /)?.[1];
      return code !== undefined;
    },
    10_000,
    20,
  );
  return code!;
}
