import { createHash } from "node:crypto";
import { HttpRoutePeer, type PeerSend, type ReceiptBehaviour } from "../test/peers/http-route-peer.js";
import { SmtpPeer } from "../test/peers/smtp-peer.js";
import { VoicePeer } from "../test/peers/voice-peer.js";
import { SeededRandom } from "./random.js";
import type { SimChannel, Take } from "./records.js";
import type { Scenario, SmsRouteScript } from "./scenario.js";

export const SMS_KEYS = { apiKey: "sim-sms-key", webhookSecret: "sim-sms-secret" } as const;
export const VOICE_KEYS = { apiKey: "sim-voice-key", webhookSecret: "sim-voice-secret" } as const;
export const EMAIL_PRICE_EUR = 0.001;
export const VOICE_PRICE_EUR = 0.15;

/** A code reaching a person. */
export interface Arrival {
  readonly channel: SimChannel;
  readonly code: string;
  readonly at: number;
}

/** Who hears of the messages to an address: a person (takes and arrivals), or the attack's books (takes). */
export interface Recipient {
  took(take: Take): void;
  arrived?(arrival: Arrival): void;
}

/**
 * The providers' side of the run: an SMS API, an SMTP server and a voice API
 * on loopback, taking what the worker sends and playing each route's script —
 * which messages reach the phone or inbox, when, and what the receipt says.
 * A message's fate is drawn from the seed, its address and how many messages
 * that address had on that channel, so the same person meets the same
 * network in every run of a seed, whatever the order messages come in.
 */
export class SimNetwork {
  private readonly recipients = new Map<string, Recipient>();
  private readonly prefixes: Array<[string, Recipient]> = [];
  private readonly counts = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly scenario: Scenario,
    private readonly now: () => number,
    readonly sms: HttpRoutePeer,
    readonly smtp: SmtpPeer,
    readonly voice: VoicePeer,
  ) {}

  static async start(scenario: Scenario, now: () => number): Promise<SimNetwork> {
    let network: SimNetwork | undefined;
    const sms = await HttpRoutePeer.start({ ...SMS_KEYS, receipt: (send) => network!.smsTaken(send) });
    const smtp = await SmtpPeer.start();
    const voice = await VoicePeer.start(VOICE_KEYS.apiKey, VOICE_KEYS.webhookSecret);
    network = new SimNetwork(scenario, now, sms, smtp, voice);
    // The subject carries the code whole ("123456 is your … code"); the body groups its digits for reading.
    smtp.onMail((mail) => network!.emailTaken(mail.envelopeTo[0] ?? "", mail.subject));
    voice.onEachCall((call) => network!.callTaken(call.to, call.text));
    return network;
  }

  /** Messages to `address` are reported to `recipient`. */
  register(address: string, recipient: Recipient): void {
    this.recipients.set(address.toLowerCase(), recipient);
  }

  /** Messages to numbers starting with `prefix` (no person of their own) are reported to `recipient`. */
  registerPrefix(prefix: string, recipient: Recipient): void {
    this.prefixes.push([prefix, recipient]);
  }

  async stop(): Promise<void> {
    this.timers.forEach(clearTimeout);
    await Promise.all([this.sms.stop(), this.smtp.stop(), this.voice.stop()]);
  }

  private smsTaken(send: PeerSend): ReceiptBehaviour {
    const number = send.numbers[0]!;
    const script = this.scenario.smsRoutes.find((r) => r.providerRoute === Number(send.routeId));
    if (script === undefined) return { status: "FAILED", errorCode: "unknown-route" };
    const at = this.now();
    const fate = this.fate("sms", number);
    const receiptAfter = Math.round(fate.between(script.receiptMs[0], script.receiptMs[1]));
    const arrivalAfter = Math.round(fate.between(script.arrivalMs[0], script.arrivalMs[1]));
    const attacked = number.startsWith(this.scenario.attack.prefix); // numbers the attacker runs: everything "arrives"
    const lost = !attacked && (fate.chance(script.silentLoss) || isDegraded(script, at));
    this.deliver(number, { channel: "sms", routeId: script.routeId, priceEur: script.priceEur, at, ...(lost ? {} : { arrivesAt: at + arrivalAfter }) }, send.message);
    // A silently lost message has no receipt; a degraded route's receipts still say DELIVERED.
    if (lost && !isDegraded(script, at)) return { status: "never" };
    return { status: "DELIVERED", afterMs: receiptAfter };
  }

  private emailTaken(address: string, text: string): void {
    const at = this.now();
    const fate = this.fate("email", address);
    const arrivalAfter = Math.round(fate.between(this.scenario.emailArrivalMs[0], this.scenario.emailArrivalMs[1]));
    const lost = fate.chance(this.scenario.emailLoss);
    this.deliver(address, { channel: "email", routeId: "email-otp", priceEur: EMAIL_PRICE_EUR, at, ...(lost ? {} : { arrivesAt: at + arrivalAfter }) }, text);
  }

  private callTaken(number: string, text: string): void {
    const at = this.now();
    const arrivalAfter = Math.round(this.fate("voice", number).between(this.scenario.callArrivalMs[0], this.scenario.callArrivalMs[1]));
    this.deliver(number, { channel: "voice", routeId: "voice-otp", priceEur: VOICE_PRICE_EUR, at, arrivesAt: at + arrivalAfter }, text.replaceAll(", ", ""));
  }

  private deliver(address: string, take: Take, text: string): void {
    const recipient = this.recipients.get(address.toLowerCase()) ?? this.prefixes.find(([prefix]) => address.startsWith(prefix))?.[1];
    if (recipient === undefined) return;
    recipient.took(take);
    const code = /(?<!\d)(\d{6})(?!\d)/.exec(text)?.[1];
    if (take.arrivesAt === undefined || code === undefined || recipient.arrived === undefined) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      recipient.arrived!({ channel: take.channel, code, at: this.now() });
    }, take.arrivesAt - take.at);
    this.timers.add(timer);
  }

  /** The draws for the n-th message on `channel` to `address`. */
  private fate(channel: SimChannel, address: string): SeededRandom {
    const key = `${channel}:${address.toLowerCase()}`;
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    const digest = createHash("sha256").update(`${this.scenario.seed}:${key}:${n}`).digest();
    return new SeededRandom(digest.readUInt32BE(0));
  }
}

function isDegraded(script: SmsRouteScript, at: number): boolean {
  return script.degradesAtMs !== undefined && at >= script.degradesAtMs;
}
