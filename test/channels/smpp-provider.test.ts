import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import smpp from "smpp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { OutboundMessage } from "../../src/channels/provider.js";
import { SendSpacing } from "../../src/channels/providers/smpp/send-spacing.js";
import { smppReceipt } from "../../src/channels/providers/smpp/smpp-receipts.js";
import { SmppProvider, splitParts, type SmppSettings } from "../../src/channels/providers/smpp/smpp-provider.js";
import { parseConfigFile } from "../../src/config/config-file.js";
import type { DeliveryReceipt } from "../../src/domain/receipt.js";
import { silentLogger } from "../../src/telemetry/logger.js";
import { waitFor } from "../harness/free-port.js";
import { providerFailure } from "../harness/provider-failure.js";
import { SmscPeer } from "../peers/smsc-peer.js";

const SYSTEM_ID = "acme";
const PASSWORD = "s3cret";

describe("SMS over SMPP 3.4 to an SMSC on loopback", () => {
  let smsc: SmscPeer;
  const providers: SmppProvider[] = [];
  const receipts: DeliveryReceipt[] = [];
  let storeFails = false;

  beforeAll(async () => {
    smsc = await SmscPeer.start(SYSTEM_ID, PASSWORD);
  });
  afterEach(async () => {
    await Promise.all(providers.splice(0).map((p) => p.close()));
    await waitFor("every session closed", async () => smsc.boundSessions === 0, 5_000, 20);
  });
  afterAll(async () => {
    await smsc?.stop();
  });

  const settings = (extra: Record<string, unknown> = {}) =>
    parseConfigFile({ providers: { carrier: { type: "smpp", host: "127.0.0.1", port: smsc.port, system_id: SYSTEM_ID, password: PASSWORD, timeout: "2s", ...extra } } }, "/").routing.providers[0] as SmppSettings;
  async function provider(extra: Record<string, unknown> = {}): Promise<SmppProvider> {
    const created = new SmppProvider(settings(extra), async (receipt) => {
      if (storeFails) throw new Error("database down");
      receipts.push(receipt);
    }, silentLogger);
    providers.push(created);
    await waitFor("the binds to be bound", async () => created.boundCount === settings(extra).binds, 10_000, 20);
    return created;
  }
  const sms = (to: string, text = "482139 is your Acme verification code."): OutboundMessage => ({ attemptId: `att-${to}`, verificationId: "vrf-s", channel: "sms", providerRoute: "sms-smpp", to, sender: "ACME", text });
  const submit = (p: SmppProvider, m: OutboundMessage) => p.submit(m, AbortSignal.timeout(2_000));
  const receiptFor = (id: string, status: string) => waitFor(`a ${status} receipt for ${id}`, async () => receipts.some((r) => r.providerMessageId === id && r.status === status), 10_000, 20);

  it("binds as a transceiver with the account, sends GSM-7 with a delivery receipt asked for, and stores the receipt", async () => {
    const p = await provider({ binds: 2 });
    expect(smsc.boundSessions).toBe(2);
    const result = await submit(p, sms("+31612360001"));
    const taken = await smsc.nextSubmitTo("31612360001");
    expect(result).toEqual({ providerMessageId: taken.messageId, delivered: false });
    expect(taken).toMatchObject({ source: "ACME", dataCoding: 0, registeredDelivery: 1, text: "482139 is your Acme verification code." });
    await receiptFor(taken.messageId!, "DELIVERED");
    expect(smsc.receiptAnswers.at(-1)).toBe(smpp.ESME_ROK);
  });

  it("sends UCS-2 when the text needs it, a number sender as an international number, and a long text as concatenated parts", async () => {
    const p = await provider();
    await submit(p, sms("+31612360002", "482139 هو رمز التحقق من Acme."));
    expect(await smsc.nextSubmitTo("31612360002")).toMatchObject({ dataCoding: 8, text: "482139 هو رمز التحقق من Acme." });
    await submit(p, { ...sms("+31612360014"), sender: "+3185000000" });
    expect(await smsc.nextSubmitTo("31612360014")).toMatchObject({ source: "3185000000", sourceTon: 1 });
    expect(await smsc.nextSubmitTo("31612360002")).toMatchObject({ source: "ACME", sourceTon: 5 });
    const long = `482139 ${"is your code, ".repeat(20)}€`;
    const result = await submit(p, sms("+31612360003", long));
    const parts = smsc.submits.filter((s) => s.destination === "31612360003");
    expect(parts.map((s) => s.part?.number)).toEqual([1, 2]);
    expect(new Set(parts.map((s) => s.part?.reference)).size).toBe(1);
    expect(parts.map((s) => s.text).join("")).toBe(long);
    expect(result.providerMessageId).toBe(parts[0]!.messageId);
  });

  it("applies receipts early (before the submit's response), late, repeated and out of order; answers the SMSC only once stored", async () => {
    const p = await provider();
    smsc.on("31612360004", { kind: "accept", receipts: [{ stat: "DELIVRD", beforeResponse: true }, { stat: "ENROUTE" }, { stat: "DELIVRD", textOnly: true }] });
    const { providerMessageId } = await submit(p, sms("+31612360004"));
    await waitFor("three receipts", async () => receipts.filter((r) => r.providerMessageId === providerMessageId).length === 3, 10_000, 20);
    expect(receipts.filter((r) => r.providerMessageId === providerMessageId).map((r) => r.status)).toEqual(["DELIVERED", "SUBMITTED", "DELIVERED"]);
    storeFails = true;
    try {
      expect(await smsc.sendReceipt(providerMessageId, "31612360004", { stat: "UNDELIV", err: "027" })).toBe(smpp.ESME_RX_T_APPN);
    } finally {
      storeFails = false;
    }
    expect(await smsc.sendReceipt(providerMessageId, "31612360004", { stat: "UNDELIV", err: "027" })).toBe(smpp.ESME_ROK);
    expect(receipts.at(-1)).toMatchObject({ providerMessageId, status: "UNDELIVERED", errorCode: "smpp_err_027" });
  });

  it("reads throttling as retry-later and a bad destination as final", async () => {
    const p = await provider();
    smsc.on("31612360005", { kind: "refuse", status: smpp.ESME_RTHROTTLED, times: 1 });
    smsc.on("31612360006", { kind: "refuse", status: smpp.ESME_RINVDSTADR });
    expect(await providerFailure(submit(p, sms("+31612360005")))).toMatchObject({ retryable: true, ambiguous: false, code: "smpp_throttled" });
    expect((await submit(p, sms("+31612360005"))).providerMessageId).toBe((await smsc.nextSubmitTo("31612360005")).messageId);
    expect(await providerFailure(submit(p, sms("+31612360006")))).toMatchObject({ retryable: false, code: "smpp_invalid_destination" });
  });

  it("a bind dropped with a submit outstanding: possibly sent, never repeated by the provider; it binds again, and receipts for earlier messages still arrive", async () => {
    const p = await provider();
    const before = await submit(p, sms("+31612360007"));
    smsc.on("31612360007", { kind: "accept", receipts: [] });
    smsc.on("31612360008", { kind: "drop" });
    expect(await providerFailure(submit(p, sms("+31612360008")))).toMatchObject({ retryable: true, ambiguous: true, code: "smpp_bind_dropped" });
    expect(smsc.requests.filter((r) => r === "31612360008")).toHaveLength(1);
    await waitFor("the bind to come back", async () => p.boundCount === 1, 10_000, 20);
    expect(await smsc.sendReceipt(before.providerMessageId, "31612360007", { stat: "DELIVRD" })).toBe(smpp.ESME_ROK);
    await receiptFor(before.providerMessageId, "DELIVERED");
    expect((await submit(p, sms("+31612360009"))).providerMessageId).toBe((await smsc.nextSubmitTo("31612360009")).messageId);
  });

  it("keeps at most `window` submits awaiting a response on a bind, counting those taken at the same moment, and says so when every bind is full", async () => {
    const p = await provider({ window: 2 });
    smsc.on("31612360010", { kind: "hold" });
    const all = [submit(p, sms("+31612360010")), submit(p, sms("+31612360010")), submit(p, sms("+31612360011"))];
    expect(await providerFailure(all[2]!)).toMatchObject({ retryable: true, ambiguous: false, code: "smpp_unbound" });
    await waitFor("two submits held", async () => smsc.requests.filter((r) => r === "31612360010").length === 2, 5_000, 20);
    expect(smsc.requests).not.toContain("31612360011");
    for (const failure of await Promise.all(all.slice(0, 2).map(providerFailure))) expect(failure).toMatchObject({ code: "timeout", ambiguous: true });
  });

  it("drops a bind whose SMSC stops answering, even enquire_link, and binds again", async () => {
    const p = await provider({ enquire_link: "50ms" });
    const attempts = smsc.bindAttempts;
    smsc.freeze();
    await waitFor("a new bind after the silence", async () => smsc.bindAttempts > attempts && p.boundCount === 1, 10_000, 20);
    expect((await submit(p, sms("+31612360013"))).providerMessageId).toBe((await smsc.nextSubmitTo("31612360013")).messageId);
  });

  it("keeps an idle bind alive with enquire_link", async () => {
    const links = smsc.enquireLinks;
    await provider({ enquire_link: "50ms" });
    await waitFor("two enquire_links", async () => smsc.enquireLinks >= links + 2, 5_000, 20);
  });

  it("refuses settings SMPP 3.4 cannot carry, naming the key", () => {
    expect(() => settings({ password: "longer-than-8" })).toThrow("providers.carrier.password: at most 8 characters (SMPP 3.4)");
    expect(() => settings({ system_id: "a-system-id-too-long" })).toThrow("providers.carrier.system_id: at most 15 characters");
    expect(() => settings({ password: undefined })).toThrow("providers.carrier.password: required");
    expect(() => settings({ binds: 0 })).toThrow("providers.carrier.binds");
    expect(settings()).toMatchObject({ port: smsc.port, binds: 1, window: 10, throughput: 100, enquireLinkMs: 30_000, tls: false });
  });

  it("does not bind with a wrong password, and retries with back-off", async () => {
    const attempts = smsc.bindAttempts;
    const p = new SmppProvider(settings({ password: "wrong" }), async () => {}, silentLogger);
    providers.push(p);
    await waitFor("two refused binds", async () => smsc.bindAttempts >= attempts + 2, 10_000, 20);
    expect(p.boundCount).toBe(0);
    expect(await providerFailure(submit(p, sms("+31612360012")))).toMatchObject({ retryable: true, code: "smpp_unbound" });
  });
});

describe("SMPP over TLS", () => {
  it("binds to an SMSC whose certificate a private CA file vouches for, and sends", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "otp-smsc-tls-"));
    // A throwaway self-signed certificate for 127.0.0.1: it is its own CA.
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=smsc.test", "-addext", "subjectAltName=IP:127.0.0.1"], { cwd: dir, stdio: "ignore" });
    const smsc = await SmscPeer.start(SYSTEM_ID, PASSWORD, { key: readFileSync(path.join(dir, "key.pem"), "utf8"), cert: readFileSync(path.join(dir, "cert.pem"), "utf8") });
    const node = { type: "smpp", host: "127.0.0.1", port: smsc.port, tls: true, tls_ca_file: "cert.pem", system_id: SYSTEM_ID, password: PASSWORD, timeout: "2s" };
    const received: DeliveryReceipt[] = [];
    const p = new SmppProvider(parseConfigFile({ providers: { carrier: node } }, dir).routing.providers[0] as SmppSettings, async (r) => void received.push(r), silentLogger);
    try {
      await waitFor("the TLS bind", async () => p.boundCount === 1, 10_000, 20);
      const { providerMessageId } = await p.submit({ attemptId: "att-tls", verificationId: "vrf-tls", channel: "sms", providerRoute: "sms-smpp", to: "+31612360020", sender: "ACME", text: "482139 is your code." }, AbortSignal.timeout(2_000));
      expect(providerMessageId).toBe((await smsc.nextSubmitTo("31612360020")).messageId);
      await waitFor("its receipt over TLS", async () => received.some((r) => r.providerMessageId === providerMessageId), 10_000, 20);
    } finally {
      await p.close();
      await smsc.stop();
    }
    expect(() => parseConfigFile({ providers: { carrier: { ...node, tls: false } } }, dir)).toThrow("providers.carrier.tls_ca_file: only with tls: true");
  });
});

describe("SMPP pieces", () => {
  it("spaces sends to the bind's throughput", () => {
    const spacing = new SendSpacing(100);
    expect([0, 0, 0, 0].map(() => spacing.reserve(1_000))).toEqual([0, 10, 20, 30]);
    expect(spacing.reserve(1_100)).toBe(0);
  });

  it("splits long texts without breaking an escape pair or a surrogate pair", () => {
    const gsm = `${"a".repeat(152)}€${"b".repeat(10)}`;
    expect(splitParts(gsm, "GSM7").map((p) => p.length)).toEqual([152, 11]);
    const ucs = `${"ب".repeat(66)}😀${"ب".repeat(10)}`;
    expect(splitParts(ucs, "UCS2").map((p) => Array.from(p).length)).toEqual([66, 11]);
  });

  it("reads receipts by TLV or by text; a message from a phone is not a receipt", () => {
    const now = new Date();
    expect(smppReceipt("c", { esm_class: 4, receipted_message_id: "5a001", message_state: 5, short_message: { message: "id:5a001 stat:UNDELIV err:027" } }, now)).toMatchObject({ providerMessageId: "5a001", status: "UNDELIVERED", errorCode: "smpp_err_027" });
    expect(smppReceipt("c", { esm_class: 4, short_message: { message: "id:77 sub:001 dlvrd:001 submit date:2612031200 done date:2612031201 stat:DELIVRD err:000 text:" } }, now)).toMatchObject({ providerMessageId: "77", status: "DELIVERED" });
    expect(smppReceipt("c", { esm_class: 4, short_message: { message: "id:78 stat:REJECTD err:000" } }, now)).toMatchObject({ status: "REJECTED", errorCode: "rejectd" });
    expect(smppReceipt("c", { esm_class: 0, short_message: { message: "STOP" } }, now)).toBeUndefined();
    expect(smppReceipt("c", { esm_class: 4, short_message: { message: "hello" } }, now)).toBeUndefined();
  });
});
