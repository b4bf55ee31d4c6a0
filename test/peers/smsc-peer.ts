import { EventEmitter, once } from "node:events";
import type { AddressInfo, Server } from "node:net";
import smpp from "smpp";

/** A `submit_sm` the SMSC took (or was handed, for behaviours that never answer). */
export interface PeerSubmit {
  readonly destination: string;
  readonly source: string;
  readonly sourceTon: number;
  readonly dataCoding: number;
  readonly registeredDelivery: number;
  readonly text: string;
  /** Concatenation header (reference, total, part number), for parts of a long message. */
  readonly part?: { readonly reference: number; readonly total: number; readonly number: number };
  readonly messageId?: string;
}

/** One receipt the SMSC sends for a message it took: the `stat` word, when, and whether the TLVs are left out. */
export interface ReceiptScript {
  readonly stat: "ENROUTE" | "DELIVRD" | "EXPIRED" | "DELETED" | "UNDELIV" | "ACCEPTD" | "UNKNOWN" | "REJECTD";
  readonly err?: string;
  /** Sent before the `submit_sm_resp` (the race the parking covers). */
  readonly beforeResponse?: boolean;
  readonly afterMs?: number;
  /** Only the text form, no `receipted_message_id` / `message_state` TLVs (older SMSCs). */
  readonly textOnly?: boolean;
}

export type SubmitBehaviour =
  | { readonly kind: "accept"; readonly receipts: readonly ReceiptScript[] }
  | { readonly kind: "refuse"; readonly status: number; readonly times?: number }
  /** Take it and never answer. */
  | { readonly kind: "hold" }
  /** Take it and drop the connection before answering. */
  | { readonly kind: "drop" };

const MESSAGE_STATE: Record<ReceiptScript["stat"], number> = { ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8 };

/**
 * An SMSC on loopback, built with the `smpp` package's server side: binds transceivers with one account's
 * credentials, answers `submit_sm` per destination as told, and sends delivery receipts as `deliver_sm` (standard
 * text, and the TLVs unless told not to) on whichever session is bound — after a reconnect, the new one.
 */
export class SmscPeer {
  readonly submits: PeerSubmit[] = [];
  /** Destination of every `submit_sm` received, answered or not. */
  readonly requests: string[] = [];
  /** `deliver_sm_resp` command_status of each receipt sent. */
  readonly receiptAnswers: number[] = [];
  bindAttempts = 0;
  enquireLinks = 0;
  private readonly sessions = new Set<smpp.Session>();
  /** Sessions that hear nothing any more (a frozen SMSC): no answer to anything. */
  private readonly frozen = new Set<smpp.Session>();
  private readonly behaviour = new Map<string, SubmitBehaviour>();
  private readonly refusals = new Map<string, number>();
  private readonly events = new EventEmitter();
  private nextId = 0x5a000;

  private constructor(
    private readonly server: Server,
    private readonly systemId: string,
    private readonly password: string,
  ) {}

  /** `tls`: a key and certificate to serve SMPP over TLS with. */
  static async start(systemId: string, password: string, tls?: { key: string; cert: string }): Promise<SmscPeer> {
    let peer: SmscPeer | undefined;
    const listener = (session: smpp.Session) => peer!.accept(session);
    const server = tls ? smpp.createServer(tls, listener) : smpp.createServer(listener);
    peer = new SmscPeer(server, systemId, password);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return peer;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get boundSessions(): number {
    return this.sessions.size;
  }

  on(destination: string, behaviour: SubmitBehaviour): void {
    this.behaviour.set(destination, behaviour);
    this.refusals.delete(destination);
  }

  async nextSubmitTo(destination: string, timeoutMs = 15_000): Promise<PeerSubmit> {
    const signal = AbortSignal.timeout(timeoutMs);
    for (;;) {
      const found = this.submits.find((s) => s.destination === destination && s.messageId !== undefined);
      if (found) return found;
      await once(this.events, "submit", { signal });
    }
  }

  async nextRequestTo(destination: string, timeoutMs = 15_000): Promise<void> {
    const signal = AbortSignal.timeout(timeoutMs);
    while (!this.requests.includes(destination)) await once(this.events, "request", { signal });
  }

  async untilBound(count: number, timeoutMs = 15_000): Promise<void> {
    const signal = AbortSignal.timeout(timeoutMs);
    while (this.sessions.size < count) await once(this.events, "bound", { signal });
  }

  /** Sends a delivery receipt on a bound session; the `deliver_sm_resp` status. */
  async sendReceipt(messageId: string, destination: string, script: ReceiptScript): Promise<number> {
    const session = [...this.sessions].at(-1);
    if (session === undefined) throw new Error("no session bound to send the receipt on");
    const text = `id:${messageId} sub:001 dlvrd:${script.stat === "DELIVRD" ? "001" : "000"} submit date:2612031200 done date:2612031200 stat:${script.stat} err:${script.err ?? "000"} text:`;
    const status = await new Promise<number>((resolve) =>
      session.deliver_sm(
        {
          source_addr: destination,
          destination_addr: "ACME",
          esm_class: 0x04,
          short_message: { message: text },
          ...(script.textOnly ? {} : { receipted_message_id: messageId, message_state: MESSAGE_STATE[script.stat] }),
        },
        (pdu) => resolve(pdu.command_status),
      ),
    );
    this.receiptAnswers.push(status);
    return status;
  }

  /** Stops answering on the sessions bound now, keeping their connections open: a hung SMSC. */
  freeze(): void {
    for (const session of this.sessions) this.frozen.add(session);
  }

  /** Closes every session, as a network drop or an SMSC restart would. */
  dropSessions(): void {
    for (const session of this.sessions) session.destroy();
  }

  async stop(): Promise<void> {
    this.dropSessions();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(session: smpp.Session): void {
    session.on("error", () => {});
    session.on("close", () => this.sessions.delete(session));
    // A frozen session reads and ignores every PDU: nothing is answered.
    const send = session.send.bind(session);
    session.send = (pdu, onResponse) => (this.frozen.has(session) ? true : send(pdu, onResponse));
    session.on("bind_transceiver", (pdu: smpp.Pdu) => {
      this.bindAttempts++;
      if (pdu.system_id !== this.systemId || pdu.password !== this.password) {
        session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
        return;
      }
      session.send(pdu.response({ system_id: "SMSC" }));
      this.sessions.add(session);
      this.events.emit("bound");
    });
    session.on("enquire_link", (pdu: smpp.Pdu) => {
      this.enquireLinks++;
      session.send(pdu.response());
    });
    session.on("unbind", (pdu: smpp.Pdu) => {
      session.send(pdu.response());
      session.close();
    });
    session.on("submit_sm", (pdu: smpp.Pdu) => void this.submit(session, pdu));
  }

  private async submit(session: smpp.Session, pdu: smpp.Pdu): Promise<void> {
    if (this.frozen.has(session)) return;
    const destination = String(pdu.destination_addr);
    this.requests.push(destination);
    this.events.emit("request");
    const behaviour = this.behaviour.get(destination) ?? { kind: "accept", receipts: [{ stat: "DELIVRD" }] };
    if (behaviour.kind === "refuse") {
      const served = this.refusals.get(destination) ?? 0;
      if (behaviour.times === undefined || served < behaviour.times) {
        this.refusals.set(destination, served + 1);
        session.send(pdu.response({ command_status: behaviour.status }));
        return;
      }
    }
    const message = pdu.short_message as { message?: unknown; udh?: Buffer[] };
    const concat = message.udh?.find((h) => h[0] === 0x00);
    const taken = {
      destination,
      source: String(pdu.source_addr),
      sourceTon: Number(pdu.source_addr_ton),
      dataCoding: Number(pdu.data_coding),
      registeredDelivery: Number(pdu.registered_delivery),
      text: typeof message.message === "string" ? message.message : "",
      ...(concat ? { part: { reference: concat[2]!, total: concat[3]!, number: concat[4]! } } : {}),
    };
    if (behaviour.kind === "hold") return void this.submits.push(taken);
    if (behaviour.kind === "drop") {
      this.submits.push(taken);
      session.destroy();
      return;
    }
    const messageId = (this.nextId++).toString(16);
    this.submits.push({ ...taken, messageId });
    this.events.emit("submit");
    const receipts = behaviour.kind === "accept" ? behaviour.receipts : [{ stat: "DELIVRD" as const }];
    for (const script of receipts.filter((r) => r.beforeResponse)) await this.sendReceipt(messageId, destination, script);
    session.send(pdu.response({ message_id: messageId }));
    for (const script of receipts.filter((r) => !r.beforeResponse)) {
      if (script.afterMs) await new Promise((resolve) => setTimeout(resolve, script.afterMs));
      if (this.sessions.size > 0) await this.sendReceipt(messageId, destination, script);
    }
  }
}
