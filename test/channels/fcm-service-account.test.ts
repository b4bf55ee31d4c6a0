import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OutboundMessage } from "../../src/channels/provider.js";
import { FcmProvider } from "../../src/channels/providers/fcm/fcm-provider.js";
import { parseConfigFile, type ProviderSettings } from "../../src/config/config-file.js";
import { providerFailure } from "../harness/provider-failure.js";
import { FcmPeer } from "../peers/fcm-peer.js";
import { GoogleTokenPeer } from "../peers/google-token-peer.js";

const EMAIL = "otp-push@acme-app.iam.gserviceaccount.com";

/**
 * FCM with a service account: the configuration reads the key file the Cloud
 * console downloads, the provider mints access tokens from it at a loopback
 * token endpoint (which checks the signed assertion) and sends with them to a
 * loopback FCM.
 */
describe("FCM with a service-account key", () => {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  let fcm: FcmPeer;
  let google: GoogleTokenPeer;
  let dir: string;
  let clock = Date.now();
  beforeAll(async () => {
    fcm = await FcmPeer.start("acme-app", "unused-static-token");
    google = await GoogleTokenPeer.start(publicKey, EMAIL, (token) => fcm.accept(token));
    dir = mkdtempSync(path.join(tmpdir(), "otp-fcm-sa-"));
  });
  afterAll(async () => {
    await Promise.all([fcm?.stop(), google?.stop()]);
  });

  /** The provider as the configuration file makes it, from a key file naming the loopback token endpoint. */
  function configured(account: Record<string, unknown> = {}, node: Record<string, unknown> = {}): ProviderSettings {
    const key = {
      type: "service_account",
      project_id: "acme-app",
      private_key_id: "k1",
      private_key: privateKey.export({ type: "pkcs8", format: "pem" }),
      client_email: EMAIL,
      token_uri: google.tokenUri,
      ...account,
    };
    writeFileSync(path.join(dir, "sa.json"), JSON.stringify(key));
    const file = parseConfigFile({ providers: { push: { type: "fcm", base_url: fcm.baseUrl, service_account_file: "sa.json", timeout: "2s", ...node } } }, dir);
    return file.routing.providers[0]!;
  }
  const provider = () => new FcmProvider(configured() as Extract<ProviderSettings, { type: "fcm" }>, () => clock);
  const push = (to: string): OutboundMessage => ({ attemptId: `att-${to}`, verificationId: "vrf-sa", channel: "push", providerRoute: "push-otp", to, sender: "Acme", subject: "Acme", text: "482139 is your code" });
  const send = (p: FcmProvider, to: string) => p.submit(push(to), AbortSignal.timeout(2_000));

  it("reads the key file (project from it) and refuses files that cannot mint tokens, naming the key", () => {
    expect(configured()).toMatchObject({ type: "fcm", projectId: "acme-app", auth: { kind: "service-account", clientEmail: EMAIL, tokenUri: google.tokenUri } });
    expect(configured({}, { project_id: "other" })).toMatchObject({ projectId: "other" });
    expect(() => configured({ private_key: "not a key" })).toThrow("providers.push.service_account_file: private_key is not a PEM private key");
    expect(() => configured({ type: "authorized_user" })).toThrow("is not a service-account key");
    expect(() => configured({}, { access_token_file: "token" })).toThrow("providers.push: set service_account_file (access tokens minted from it) or access_token_file");
    const ecKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" });
    expect(() => configured({ private_key: ecKey })).toThrow("private_key must be an RSA key (RS256)");
  });

  it("mints one token for many sends, concurrent ones included, and a new one shortly before it expires", async () => {
    const p = provider();
    const before = google.requests.length;
    await Promise.all(["d1", "d2", "d3"].map((to) => send(p, to)));
    await send(p, "d4");
    expect(google.requests.length - before).toBe(1);
    expect(google.requests.at(-1)).toMatchObject({ valid: true, claims: { iss: EMAIL, aud: google.tokenUri, scope: "https://www.googleapis.com/auth/firebase.messaging" } });
    expect(fcm.messages.filter((m) => ["d1", "d2", "d3", "d4"].includes(m.token))).toHaveLength(4);

    clock += 3_599_000 - 4 * 60_000; // inside the last five minutes of its hour
    await send(p, "d5");
    expect(google.requests.length - before).toBe(2);
  });

  it("keeps sending with the token it holds while the endpoint is down, and fails retryably once that expired", async () => {
    const p = provider();
    await send(p, "e1");
    google.answers.push({ kind: "status", status: 503, body: { error: "backendError" } }, { kind: "status", status: 503, body: { error: "backendError" } });
    clock += 3_599_000 - 60_000; // due for a refresh, not yet expired
    await send(p, "e2");
    clock += 120_000; // expired
    expect(await providerFailure(send(p, "e3"))).toMatchObject({ retryable: true, code: "credential", ambiguous: false });
    await send(p, "e3"); // the endpoint is back
    expect(fcm.messages.filter((m) => m.token.startsWith("e"))).toHaveLength(3);
  });

  it("replaces a token FCM refuses and sends once; a refused assertion or a hostile answer is not a token", async () => {
    const p = provider();
    await send(p, "r1");
    const issued = google.requests.length;
    for (const token of [...Array(20).keys()].map((i) => `ya29.sa-${i}`)) fcm.revoke(token);
    await send(p, "r2");
    expect(google.requests.length).toBe(issued + 1);
    expect(fcm.messages.filter((m) => m.token === "r2")).toHaveLength(1);

    const refused = provider();
    google.answers.push({ kind: "status", status: 401, body: { error: "invalid_client" } });
    expect(await providerFailure(send(refused, "r3"))).toMatchObject({ retryable: false, code: "credential" });
    for (const body of [{ access_token: "", expires_in: 3_600 }, { access_token: "ya29.x", expires_in: 10 ** 9 }, { access_token: "bad token with spaces", expires_in: 3_600 }]) {
      google.answers.push({ kind: "status", status: 200, body });
      expect(await providerFailure(send(provider(), "r4"))).toMatchObject({ retryable: true, code: "credential" });
    }
    expect(fcm.messages.filter((m) => m.token === "r3" || m.token === "r4")).toEqual([]);
  });
});
