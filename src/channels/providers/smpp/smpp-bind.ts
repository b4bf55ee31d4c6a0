import { setTimeout as sleep } from "node:timers/promises";
import smpp from "smpp";
import type { Logger } from "../../../telemetry/logger.js";
import { ProviderError } from "../../provider.js";
import type { SmppSettings } from "./smpp-provider.js";
import { SendSpacing } from "./send-spacing.js";
import type { DeliverSm } from "./smpp-receipts.js";

/** Reconnect back-off: 1 s, doubling, at most 30 s. */
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;

/** `submit_sm_resp` statuses that say "later" (and certainly nothing was taken). */
const RETRYABLE_STATUS = new Set([smpp.ESME_RTHROTTLED, smpp.ESME_RMSGQFUL, smpp.ESME_RSYSERR, 0x45 /* ESME_RSUBMITFAIL */]);

/** What the bind asks of its owner: take a `deliver_sm` (true once it is stored; false: the SMSC should send it again). */
export type DeliverHandler = (pdu: DeliverSm) => Promise<boolean>;

/**
 * One transceiver session with the SMSC: bound with the account's credentials, kept alive by `enquire_link`,
 * re-established with back-off whenever it drops (its `submit_sm` awaiting a response then fail as possibly sent).
 * At most `window` submits await their response at once, spaced to `throughput` per second.
 */
export class SmppBind {
  private session: smpp.Session | undefined;
  private bound = false;
  private stopped = false;
  private retryMs = FIRST_RETRY_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private silenceTimer: NodeJS.Timeout | undefined;
  private lastHeardAt = 0;
  /** Submits taken by this bind and not settled yet, counted from the moment they are taken (the window). */
  private inFlight = 0;
  private readonly outstanding = new Set<(error: ProviderError) => void>();
  private readonly spacing: SendSpacing;

  constructor(
    private readonly settings: SmppSettings,
    readonly index: number,
    private readonly onDeliver: DeliverHandler,
    private readonly log: Logger,
  ) {
    this.spacing = new SendSpacing(settings.throughput);
  }

  start(): void {
    this.connect();
  }

  /** Bound, with room in its window. */
  get available(): boolean {
    return this.bound && this.inFlight < this.settings.window;
  }

  get isBound(): boolean {
    return this.bound;
  }

  /** Sends one `submit_sm`; the SMSC's message id. Takes its window slot at once, before any wait. */
  async submit(fields: Record<string, unknown>, signal: AbortSignal): Promise<string> {
    this.inFlight++;
    try {
      return await this.send(fields, signal);
    } finally {
      this.inFlight--;
    }
  }

  private async send(fields: Record<string, unknown>, signal: AbortSignal): Promise<string> {
    const wait = this.spacing.reserve(Date.now());
    if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => undefined);
    if (signal.aborted) throw new ProviderError("no throughput slot on the SMPP bind in time", true, "timeout");
    const session = this.session;
    if (!this.bound || session === undefined) throw new ProviderError(`SMPP bind ${this.index} is not bound`, true, "smpp_unbound");
    return new Promise<string>((resolve, reject) => {
      const fail = (error: ProviderError) => {
        this.outstanding.delete(fail);
        signal.removeEventListener("abort", onAbort);
        reject(error);
      };
      const onAbort = () => fail(new ProviderError("SMSC did not answer the submit in time", true, "timeout", true));
      signal.addEventListener("abort", onAbort, { once: true });
      this.outstanding.add(fail);
      session.submit_sm(fields, (pdu) => {
        if (!this.outstanding.has(fail)) return;
        this.outstanding.delete(fail);
        signal.removeEventListener("abort", onAbort);
        const status = pdu.command_status;
        const id = pdu.message_id;
        if (status === smpp.ESME_ROK && typeof id === "string" && id !== "" && id.length <= 64) return resolve(id);
        if (status === smpp.ESME_ROK) return reject(new ProviderError("SMSC accepted the submit without a message id", true, "bad_response", true));
        reject(new ProviderError(`SMSC refused the submit (command_status 0x${status.toString(16).padStart(8, "0")})`, RETRYABLE_STATUS.has(status), statusCode(status)));
      });
    });
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.silenceTimer);
    const session = this.session;
    if (session === undefined) return;
    // A polite unbind, but no waiting on an SMSC that does not answer it.
    if (this.bound) await Promise.race([new Promise<void>((resolve) => session.unbind({}, () => resolve())), sleep(1_000)]);
    session.destroy();
  }

  private connect(): void {
    const { host, port, tls, tlsCa, systemId, password, systemType, enquireLinkMs } = this.settings;
    const session = smpp.connect({ host, port, tls, ...(tlsCa !== undefined ? { ca: tlsCa } : {}), auto_enquire_link_period: enquireLinkMs });
    this.session = session;
    session.on(tls ? "secureConnect" : "connect", () => {
      session.bind_transceiver({ system_id: systemId, password: password.reveal(), system_type: systemType, interface_version: 0x34 }, (pdu) => {
        if (pdu.command_status !== smpp.ESME_ROK) {
          this.log.warn("SMPP bind refused", { provider: this.settings.name, bind: this.index, status: pdu.command_status });
          session.destroy();
          return;
        }
        this.bound = true;
        this.retryMs = FIRST_RETRY_MS;
        this.watchSilence(session);
        this.log.info("SMPP bound", { provider: this.settings.name, bind: this.index });
      });
    });
    session.on("deliver_sm", (pdu: smpp.Pdu) => void this.deliver(session, pdu));
    session.on("enquire_link", (pdu: smpp.Pdu) => session.send(pdu.response()));
    session.on("unbind", (pdu: smpp.Pdu) => {
      session.send(pdu.response());
      session.close();
    });
    session.on("error", (error: Error) => this.log.warn("SMPP connection error", { provider: this.settings.name, bind: this.index, error: error.message }));
    session.on("close", () => this.dropped(session));
  }

  /**
   * An SMSC that stops answering (frozen, or a connection that died without a FIN) would hold submits until their
   * timeout forever: one that says nothing — not even to `enquire_link` — for three keep-alive periods is dropped,
   * and the bind starts over.
   */
  private watchSilence(session: smpp.Session): void {
    const period = this.settings.enquireLinkMs;
    this.lastHeardAt = Date.now();
    session.on("pdu", () => (this.lastHeardAt = Date.now()));
    clearInterval(this.silenceTimer);
    this.silenceTimer = setInterval(() => {
      if (Date.now() - this.lastHeardAt <= 3 * period) return;
      this.log.warn("SMPP bind silent; reconnecting", { provider: this.settings.name, bind: this.index, silentMs: Date.now() - this.lastHeardAt });
      session.destroy();
    }, period);
    this.silenceTimer.unref();
  }

  /** Answers a `deliver_sm` only once its receipt is stored: an SMSC sends one it got no answer for again. */
  private async deliver(session: smpp.Session, pdu: smpp.Pdu): Promise<void> {
    const stored = await this.onDeliver(pdu as DeliverSm).catch(() => false);
    session.send(pdu.response(stored ? {} : { command_status: smpp.ESME_RX_T_APPN }));
  }

  private dropped(session: smpp.Session): void {
    if (this.session !== session) return;
    const wasBound = this.bound;
    this.bound = false;
    clearInterval(this.silenceTimer);
    this.session = undefined;
    for (const fail of [...this.outstanding]) fail(new ProviderError("the SMPP bind dropped while the submit awaited its response", true, "smpp_bind_dropped", true));
    if (this.stopped) return;
    if (wasBound) this.log.warn("SMPP bind dropped; reconnecting", { provider: this.settings.name, bind: this.index, inMs: this.retryMs });
    this.reconnectTimer = setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
  }
}

function statusCode(status: number): string {
  if (status === smpp.ESME_RTHROTTLED) return "smpp_throttled";
  if (status === smpp.ESME_RMSGQFUL) return "smpp_queue_full";
  if (status === smpp.ESME_RINVDSTADR) return "smpp_invalid_destination";
  return `smpp_0x${status.toString(16).padStart(2, "0")}`;
}
