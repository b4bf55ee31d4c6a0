import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { OtpService } from "../gen/otp/v1/otp_service_pb.js";
import { freePort } from "../test/harness/free-port.js";
import { startNats, type RunningNats } from "../test/harness/nats.js";
import { createTestDatabase } from "../test/harness/postgres.js";
import { startServeProcess, startWorkerProcess, type ServiceProcess } from "../test/harness/service-process.js";
import { EMAIL_PRICE_EUR, SimNetwork, SMS_KEYS, VOICE_KEYS, VOICE_PRICE_EUR } from "./network.js";
import type { DeadlineVariant } from "./records.js";
import type { Scenario } from "./scenario.js";

export const SIM_TOKEN = "sim-shop-token";

/** One run's service: `serve` and a `worker` as processes on their own database and nats-server, and the providers. */
export interface Stack {
  readonly client: Client<typeof OtpService>;
  readonly network: SimNetwork;
  /** ms since the stack was ready: the run's clock. */
  readonly now: () => number;
  close(): Promise<void>;
}

export async function startStack(scenario: Scenario, variant: DeadlineVariant, pgAdminUrl: string): Promise<Stack> {
  const started = { at: 0 };
  const now = () => performance.now() - started.at;
  const cleanups: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const nats: RunningNats = await startNats();
    cleanups.push(() => nats.stop());
    const network = await SimNetwork.start(scenario, now);
    cleanups.push(() => network.stop());
    const httpPort = await freePort();
    const options = {
      databaseUrl: await createTestDatabase(pgAdminUrl),
      natsUrl: nats.url,
      configFile: writeConfig(scenario, variant, network, httpPort),
      httpPort,
      env: {
        ...scenario.serviceEnv,
        // One application's sign-up traffic: its callers' windows are not what the run is about.
        OTP_SENDS_PER_CALLER: "1000000/1m",
        OTP_SHUTDOWN_GRACE_MS: "1000",
      },
    };
    const serve: ServiceProcess = await startServeProcess(options);
    cleanups.push(() => serve.stop("SIGTERM"));
    network.sms.webhookUrl = `http://127.0.0.1:${httpPort}/webhooks/dlr/bridgex`;
    const worker = await startWorkerProcess(options);
    cleanups.push(() => worker.stop("SIGTERM"));
    const client = createClient(OtpService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${serve.grpcPort}` }));
    started.at = performance.now();
    return { client, network, now, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * The routes of the scenario (one SMS route per country, two for DE, each with its provider route number), email and
 * voice, the policy of the variant, and one caller: the application whose users ask for codes.
 */
function writeConfig(scenario: Scenario, variant: DeadlineVariant, network: SimNetwork, httpPort: number): string {
  const dir = mkdtempSync(path.join(tmpdir(), "otp-sim-"));
  const smsDeadline = variant === "auto" ? "deadline: auto, deadline_min: 2s, deadline_max: 30s" : "deadline: 15s";
  const lines = [
    "providers:",
    `  bridgex: { type: http-route, base_url: "${network.sms.baseUrl}", api_key: ${SMS_KEYS.apiKey}, webhook_secret: ${SMS_KEYS.webhookSecret}, idempotency_key: true, timeout: 5s }`,
    `  mail: { type: smtp, host: 127.0.0.1, port: ${network.smtp.port}, timeout: 5s }`,
    `  voice: { type: voice-http, base_url: "${network.voice.baseUrl}", api_key: ${VOICE_KEYS.apiKey}, webhook_secret: ${VOICE_KEYS.webhookSecret}, status_callback_url: "http://127.0.0.1:${httpPort}/webhooks/dlr/voice", timeout: 5s }`,
    "routes:",
    ...scenario.smsRoutes.map(
      (r) =>
        `  - { id: ${r.routeId}, channel: sms, provider: bridgex, provider_route: ${r.providerRoute}, traffic_class: otp, sender: ACME, countries: [${r.country}], prices: { ${r.country}: ${r.priceEur} } }`,
    ),
    `  - { id: email-otp, channel: email, provider: mail, traffic_class: otp, sender: "Acme <no-reply@acme.example>", prices: { "*": ${EMAIL_PRICE_EUR} } }`,
    `  - { id: voice-otp, channel: voice, provider: voice, traffic_class: otp, sender: "+3185000000", prices: { "*": ${VOICE_PRICE_EUR} } }`,
    "policies:",
    "  default:",
    "    steps:",
    `      - { channel: sms, ${smsDeadline}, escalate_when: undelivered }`,
    "      - { channel: email, deadline: 20s, escalate_when: unverified }",
    "      - { channel: voice, deadline: 30s, escalate_when: unverified }",
    "callers:",
    `  shop: { token_sha256: ${createHash("sha256").update(SIM_TOKEN).digest("hex")} }`,
    "",
  ];
  const file = path.join(dir, "otp.yaml");
  writeFileSync(file, lines.join("\n"));
  return file;
}
