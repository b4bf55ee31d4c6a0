import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/config.js";
import { SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import { DEFAULT_POLICY } from "../../src/domain/plan.js";
import { loadConfigFile, parseConfigFile } from "../../src/config/config-file.js";

const example = `
providers:
  bridgex:
    type: http-route
    base_url: https://api.bridgex.example/
    api_key_file: secrets/bridgex-key
    webhook_secret: dlr-shared-secret
    idempotency_key: true
    timeout: 5s
  mail:
    type: smtp
    host: smtp.example
    port: 465
    secure: true
    username: otp
    password: hunter2
routes:
  - id: sms-nl-otp
    channel: sms
    provider: bridgex
    provider_route: 3
    traffic_class: otp
    sender: ACME
    countries: [NL, BE]
    currency: EUR
    prices: { NL: 0.072, "*": 0.09 }
  - id: email-otp
    channel: email
    provider: mail
    traffic_class: otp
    sender: "Acme <no-reply@acme.example>"
`;

function writeConfig(text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), "otp-config-"));
  writeFileSync(path.join(dir, "otp.yaml"), text);
  return path.join(dir, "otp.yaml");
}

describe("routing file", () => {
  it("reads providers and routes, prices in micros, secrets from files relative to it", () => {
    const file = writeConfig(example);
    mkdirSync(path.join(path.dirname(file), "secrets"));
    writeFileSync(path.join(path.dirname(file), "secrets/bridgex-key"), "key-from-file\n");
    const { routing } = loadConfigFile(file);
    expect(routing.routes[0]).toEqual({
      id: "sms-nl-otp",
      channel: "sms",
      provider: "bridgex",
      providerRoute: "3",
      trafficClass: "otp",
      sender: "ACME",
      countries: ["NL", "BE"],
      currency: "EUR",
      pricesMicros: { NL: 72_000, "*": 90_000 },
    });
    expect(routing.routes[1]).toMatchObject({ providerRoute: "email-otp", countries: ["*"], pricesMicros: { "*": 0 } });
    const bridgex = routing.providers.find((p) => p.name === "bridgex")!;
    expect(bridgex).toMatchObject({ type: "http-route", baseUrl: "https://api.bridgex.example", receipts: "webhook", idempotencyKey: true, timeoutMs: 5_000 });
    expect(bridgex.type === "http-route" && bridgex.apiKey.reveal()).toBe("key-from-file");
  });

  it("reads the README's provider examples after the main one (Twilio, SMPP, WhatsApp)", () => {
    const readme = readFileSync(path.resolve(import.meta.dirname, "../../README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Configuration file"), readme.indexOf("## Kubernetes"));
    const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].slice(1).map((m) => m[1]!);
    const secrets = mkdtempSync(path.join(tmpdir(), "otp-secrets-"));
    for (const name of ["twilio-auth-token", "smpp-password", "whatsapp-token", "whatsapp-app-secret", "whatsapp-verify-token"]) writeFileSync(path.join(secrets, name), name === "smpp-password" ? "s3cret\n" : `${name}-value\n`);
    const parsed = blocks.map((yaml) => loadConfigFile(writeConfig(yaml.replaceAll("/run/secrets", secrets))).routing);
    expect(parsed.map((r) => r.providers.map((p) => p.type))).toEqual([["twilio"], ["smpp"], ["whatsapp-cloud"]]);
    expect(parsed[1]!.providers[0]).toMatchObject({ host: "smsc.carrier.example", port: 2775, binds: 2, window: 10, throughput: 100, enquireLinkMs: 30_000 });
    parsed.splice(1, 1);
    expect(parsed[1]!.providers[0]).toMatchObject({ baseUrl: "https://graph.facebook.com/v21.0", template: { name: "verification_code", languages: ["en_US", "nl", "de", "pt_BR"] } });
    expect(parsed[1]!.routes[0]).toMatchObject({ channel: "whatsapp", sender: "106540352242922", pricesMicros: { NL: 36_800, "*": 50_000 } });
    expect(parsed[1]!.policies.get("default")!.steps.map((s) => s.channel)).toEqual(["whatsapp", "sms"]);
  });

  it("reads the example in the README, key by key as documented", () => {
    const readme = readFileSync(path.resolve(import.meta.dirname, "../../README.md"), "utf8");
    const yaml = /## Configuration file[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)![1]!;
    const secrets = mkdtempSync(path.join(tmpdir(), "otp-secrets-"));
    for (const name of ["bridgex-api-key", "bridgex-dlr-secret", "smtp-password", "voice-api-key", "voice-status-secret"]) writeFileSync(path.join(secrets, name), `${name}-value\n`);
    writeFileSync(path.join(secrets, "checkout-token-sha256"), `${"c".repeat(64)}\n`);
    const key = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" });
    writeFileSync(
      path.join(secrets, "fcm-service-account.json"),
      JSON.stringify({ type: "service_account", project_id: "acme-app", private_key: key, client_email: "otp@acme-app.iam.gserviceaccount.com", token_uri: "https://oauth2.googleapis.com/token" }),
    );
    const file = loadConfigFile(writeConfig(yaml.replaceAll("/run/secrets", secrets)));
    const { routing } = file;
    expect(routing.providers.map((p) => [p.name, p.type])).toEqual([
      ["bridgex", "http-route"],
      ["mail", "smtp"],
      ["calls", "voice-http"],
      ["fcm", "fcm"],
      ["sandbox", "sandbox"],
    ]);
    expect(routing.providers.find((p) => p.name === "fcm")).toMatchObject({ projectId: "acme-app", auth: { kind: "service-account", clientEmail: "otp@acme-app.iam.gserviceaccount.com" } });
    expect(routing.routes.map((r) => [r.id, r.channel, r.provider, r.providerRoute])).toEqual([
      ["sms-nl-otp", "sms", "bridgex", "3"],
      ["email-otp", "email", "mail", "email-otp"],
      ["voice-otp", "voice", "calls", "voice-otp"],
      ["push-otp", "push", "fcm", "push-otp"],
    ]);
    expect(routing.routes[0]!.pricesMicros).toEqual({ NL: 72_000, BE: 81_000 });
    expect(routing.routes[0]!.senders).toEqual(["ACMEPAY"]);
    expect(routing.policies.get("default")!.steps.map((s) => s.channel)).toEqual(["sms", "email", "voice", "push"]);
    expect(routing.policies.get("default")!.countrySteps?.get("US")?.[1]).toMatchObject({ channel: "email", cooldownMs: 60_000 });
    expect(file.callers).toEqual([
      {
        id: "checkout",
        tokenSha256: "c".repeat(64),
        channels: ["sms", "email", "voice", "push"],
        countries: ["NL", "BE", "US"],
        routes: ["sms-nl-otp", "email-otp", "voice-otp", "push-otp"],
        senders: ["ACMESHOP"],
        credit: { currency: "EUR", micros: 50_000_000 },
        dailySpendCap: { currency: "EUR", countries: new Map([["US", 20_000_000]]), otherCountries: 100_000_000 },
        messages: new Map([["nl", { sms: "{code} is je Acme-code." }]]),
      },
    ]);
    expect([...file.messages!.keys()]).toEqual(["nl", "fr-CA"]);
    expect(file.messages!.get("fr-CA")).toEqual({ pushBody: "Votre code : {code}" });
  });

  it("reads policies (steps, per-country steps, routes, cooldowns) and callers (limits and opening credit)", () => {
    const file = parseConfigFile(
      {
        providers: { s: { type: "sandbox" } },
        routes: [
          { id: "sms-a", channel: "sms", provider: "s", traffic_class: "otp", sender: "A" },
          { id: "sms-us", channel: "sms", provider: "s", traffic_class: "otp", sender: "B", countries: ["US"] },
        ],
        policies: {
          default: {
            steps: [
              { channel: "sms", deadline: "15s", escalate_when: "undelivered" },
              { channel: "email", deadline: "30s", cooldown: "2m" },
              { channel: "voice", deadline: "auto", deadline_min: "4s", deadline_max: "45s" },
              { channel: "push", deadline: "auto" },
            ],
            countries: { US: [{ channel: "sms", route: "sms-us", deadline: "20s", escalate_when: "undelivered" }] },
          },
        },
        callers: { checkout: { token_sha256: "A".repeat(64), countries: ["NL"], routes: ["sms-a"], channels: ["sms"], credit: { currency: "EUR", amount: 12.5 } } },
      },
      "/",
    );
    const policy = file.routing.policies.get("default")!;
    expect(policy.steps).toEqual([
      { channel: "sms", deadlineMs: 15_000, escalateWhen: "undelivered" },
      { channel: "email", deadlineMs: 30_000, escalateWhen: "unverified", cooldownMs: 120_000 },
      { channel: "voice", deadlineMs: 45_000, autoDeadline: { minMs: 4_000, maxMs: 45_000 }, escalateWhen: "unverified" },
      { channel: "push", deadlineMs: 30_000, autoDeadline: { minMs: 3_000, maxMs: 30_000 }, escalateWhen: "unverified" },
    ]);
    expect(policy.countrySteps?.get("US")).toEqual([{ channel: "sms", deadlineMs: 20_000, escalateWhen: "undelivered", routeId: "sms-us" }]);
    expect(file.callers).toEqual([
      { id: "checkout", tokenSha256: "a".repeat(64), channels: ["sms"], countries: ["NL"], routes: ["sms-a"], credit: { currency: "EUR", micros: 12_500_000 } },
    ]);
  });

  it("reads a caller's daily spend cap per country, in the currency its routes price in", () => {
    const routes = [
      { id: "sms-eur", channel: "sms", provider: "s", traffic_class: "otp", sender: "A", currency: "EUR", prices: { "*": 0.07 } },
      { id: "sms-usd", channel: "sms", provider: "s", traffic_class: "otp", sender: "B", currency: "USD", prices: { "*": 0.08 } },
    ];
    const document = (caller: object) => ({ providers: { s: { type: "sandbox" } }, routes, callers: { shop: { token_sha256: "a".repeat(64), ...caller } } });
    const file = parseConfigFile(document({ routes: ["sms-eur"], daily_spend_cap: { currency: "EUR", countries: { NG: 5, "*": 50.5 } } }), "/");
    expect(file.callers?.[0]?.dailySpendCap).toEqual({ currency: "EUR", countries: new Map([["NG", 5_000_000]]), otherCountries: 50_500_000 });
    expect(parseConfigFile(document({ routes: ["sms-eur"], daily_spend_cap: { currency: "EUR", countries: { NG: 5 } } }), "/").callers?.[0]?.dailySpendCap).toEqual({
      currency: "EUR",
      countries: new Map([["NG", 5_000_000]]),
    });
    for (const [caller, expected] of [
      [{ daily_spend_cap: { currency: "EUR", countries: { NG: 5 } } }, "callers.shop.daily_spend_cap.currency: route sms-usd prices in USD, the cap is in EUR"],
      [{ routes: ["sms-eur"], daily_spend_cap: { currency: "euro", countries: {} } }, "callers.shop.daily_spend_cap.currency: expected an ISO 4217 code"],
      [{ routes: ["sms-eur"], daily_spend_cap: { currency: "EUR", countries: { Nigeria: 5 } } }, "callers.shop.daily_spend_cap.countries.Nigeria"],
      [{ routes: ["sms-eur"], daily_spend_cap: { currency: "EUR", countries: { NG: -1 } } }, "callers.shop.daily_spend_cap.countries.NG: expected a non-negative amount in EUR"],
      [{ routes: ["sms-eur"], daily_spend_caps: { currency: "EUR", countries: { NG: 5 } } }, "callers.shop.daily_spend_caps: unknown key"],
    ] as const) {
      expect(() => parseConfigFile(document(caller), "/")).toThrow(expected);
    }
    // The day's spend is kept in the window counters: they must outlive a day.
    const capped = writeConfig(
      'providers: { s: { type: sandbox } }\nroutes: [{ id: r1, channel: sms, provider: s, traffic_class: otp, sender: X }]\ncallers: { shop: { token_sha256: "' +
        "a".repeat(64) +
        '", daily_spend_cap: { currency: EUR, countries: { "*": 10 } } } }\n',
    );
    const short = { OTP_CONFIG: capped, OTP_ROUTE_CONVERSION_BASELINE: "1h", OTP_SENDS_PER_DEVICE: "off", OTP_RETAIN_WINDOW_COUNTERS: "12h" };
    expect(() => loadConfig(["dev"], short)).toThrow("OTP_RETAIN_WINDOW_COUNTERS: must be at least 24 h while a caller has a daily_spend_cap (shop)");
    expect(loadConfig(["dev"], { ...short, OTP_RETAIN_WINDOW_COUNTERS: "24h" }).callers?.[0]?.dailySpendCap?.otherCountries).toBe(10_000_000);
  });

  it("reads config/dev.yaml, which npm run dev uses: the built-in sandbox catalogue and default policy, spelled out", () => {
    const file = loadConfigFile(path.resolve(import.meta.dirname, "../../config/dev.yaml"));
    expect(file.routing.routes).toEqual(SANDBOX_ROUTES);
    expect(file.routing.policies.get("default")).toEqual(DEFAULT_POLICY);
    expect(file.callers).toBeUndefined();
  });

  it("never prints a secret: logging, JSON and inspect show [redacted]", () => {
    const { routing } = parseConfigFile({ providers: { mail: { type: "smtp", host: "h", password: "hunter2" } } }, "/");
    expect(JSON.stringify(routing)).not.toContain("hunter2");
    expect(inspect(routing, { depth: 10 })).not.toContain("hunter2");
    expect(`${(routing.providers[0] as { password: unknown }).password}`).toBe("[redacted]");
  });

  it.each([
    [{ routes: [{ id: "r", channel: "fax", provider: "p", traffic_class: "otp", sender: "S" }], providers: { p: { type: "sandbox" } } }, "routes[0].channel"],
    [{ routes: [{ id: "r", channel: "sms", provider: "nope", traffic_class: "otp", sender: "S" }] }, 'routes[0].provider: no provider named "nope"'],
    [{ routes: [{ id: "r", channel: "sms", provider: "p", traffic_class: "promo", sender: "S" }], providers: { p: { type: "sandbox" } } }, "routes[0].traffic_class"],
    [{ routes: [{ id: "r", channel: "sms", provider: "p", traffic_class: "otp", sender: "S", prices: { NL: -1 } }], providers: { p: { type: "sandbox" } } }, "routes[0].prices.NL"],
    [{ routes: [{ id: "r", channel: "sms", provider: "p", traffic_class: "otp", sender: "S", countries: ["nl"] }], providers: { p: { type: "sandbox" } } }, "routes[0].countries"],
    [{ providers: { b: { type: "http-route", base_url: "ftp://x", api_key: "k", webhook_secret: "s" } } }, "providers.b.base_url"],
    [{ providers: { b: { type: "http-route", base_url: "http://x", api_key: "k" } } }, "providers.b.webhook_secret"],
    [{ providers: { b: { type: "http-route", base_url: "http://x", webhook_secret: "s" } } }, "providers.b.api_key"],
    [{ providers: { b: { type: "carrier-pigeon" } } }, "providers.b.type"],
    [{ policies: {} }, "policies.default: required"],
    [{ policies: { default: { steps: [] } } }, "policies.default.steps: expected a non-empty list"],
    [{ policies: { default: { steps: [{ channel: "sms", escalate_when: "never" }] } } }, "policies.default.steps[0].escalate_when"],
    [{ policies: { default: { steps: [{ channel: "sms", route: "ghost" }] } } }, 'policies.default.steps[0].route: no route with id "ghost"'],
    [{ policies: { default: { steps: [{ channel: "sms", deadline: "soon" }] } } }, "policies.default.steps[0].deadline"],
    [{ policies: { default: { steps: [{ channel: "sms", deadline: "15s", deadline_max: "20s" }] } } }, "policies.default.steps[0].deadline_max: only with deadline: auto"],
    [{ policies: { default: { steps: [{ channel: "sms", deadline: "auto", deadline_min: "20s", deadline_max: "10s" }] } } }, "policies.default.steps[0].deadline_min: must not be longer"],
    [{ policies: { default: { steps: [{ channel: "sms", deadline: "auto", deadline_max: "later" }] } } }, "policies.default.steps[0].deadline_max: expected a duration"],
    [{ policies: { default: { steps: [{ channel: "sms" }], countries: { usa: [{ channel: "sms" }] } } } }, "policies.default.countries.usa"],
    [{ callers: { checkout: { token_sha256: "abc" } } }, "callers.checkout.token_sha256"],
    [{ callers: { checkout: { token_sha256: "a".repeat(64), countries: ["Netherlands"] } } }, "callers.checkout.countries"],
    [{ callers: { checkout: { token_sha256: "a".repeat(64), routes: ["ghost"] } } }, "callers.checkout.routes"],
    [{ callers: { checkout: { token_sha256: "a".repeat(64), credit: { currency: "EUR", amount: -1 } } } }, "callers.checkout.credit.amount"],
    [{ fallback: {} }, "fallback: unknown key"],
  ])("names the key at fault: %j", (document, expected) => {
    expect(() => parseConfigFile(document, "/")).toThrow(expected);
  });

  it("is read through OTP_CONFIG (or --config), its errors named after it", () => {
    const config = loadConfig(["dev"], { OTP_CONFIG: writeConfig("providers: { s: { type: sandbox } }\nroutes: [{ id: r1, channel: sms, provider: s, traffic_class: otp, sender: X }]\n") });
    expect(config.routing.routes.map((r) => r.id)).toEqual(["r1"]);
    expect(loadConfig(["dev"], {}).routing.routes.map((r) => r.id)).toEqual(["sandbox-sms", "sandbox-email", "sandbox-voice", "sandbox-push", "sandbox-whatsapp"]);
    const bad = writeConfig("routes: 7\n");
    expect(() => loadConfig(["dev", "--config", bad], {})).toThrow(new ConfigError(`--config routes: expected a list`));
  });

  it("refuses an ack wait that a slow provider call could outlast", () => {
    const file = writeConfig("providers: { b: { type: http-route, base_url: 'http://x', api_key: k, receipts: poll, timeout: 30s } }\n");
    expect(() => loadConfig(["dev"], { OTP_CONFIG: file })).toThrow("OTP_WORKER_ACK_WAIT");
    expect(loadConfig(["dev"], { OTP_CONFIG: file, OTP_WORKER_ACK_WAIT: "45s" }).workerAckWaitMs).toBe(45_000);
  });
});
