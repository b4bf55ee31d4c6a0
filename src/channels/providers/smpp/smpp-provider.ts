import type { ProviderSettings } from "../../../config/config-file.js";
import type { DeliveryReceipt } from "../../../domain/receipt.js";
import { smsSize } from "../../../domain/sms-text.js";
import type { Logger } from "../../../telemetry/logger.js";
import { ProviderError, type OutboundMessage, type Provider, type SubmitResult } from "../../provider.js";
import { SmppBind } from "./smpp-bind.js";
import { smppReceipt, type DeliverSm } from "./smpp-receipts.js";

export type SmppSettings = Extract<ProviderSettings, { type: "smpp" }>;

/** Stores a receipt that arrived on a bind; resolves once it is kept (the SMSC is answered only then). */
export type ReceiptSink = (receipt: DeliveryReceipt) => Promise<void>;

const DATA_CODING = { GSM7: 0x00, UCS2: 0x08 } as const;
/** Characters per part of a concatenated message: GSM-7 septets / UCS-2 units, less the 6-octet UDH. */
const PART_UNITS = { GSM7: 153, UCS2: 67 } as const;
const GSM7_EXTENSION = new Set("^{}\\[~]|€\f");

/**
 * SMS over SMPP 3.4 to a carrier's SMSC: `binds` transceiver sessions (smpp-bind.ts), each `submit_sm` on the next
 * bound one with room in its window, `registered_delivery` set, GSM-7 (data_coding 0) or UCS-2 (8) as the text
 * needs, a concatenated message (UDH) for the rare text over one segment. Receipts come back on the binds as
 * `deliver_sm` and go to `receipts` (the worker stores them; one that beats its `submit_sm_resp` is parked as with
 * every provider). SMPP has no idempotency key: a submit whose response was lost is not repeated.
 */
export class SmppProvider implements Provider {
  readonly name: string;
  readonly idempotent = false;
  readonly timeoutMs: number;
  private readonly binds: SmppBind[];
  private next = 0;
  private reference = 0;

  constructor(
    private readonly settings: SmppSettings,
    receipts: ReceiptSink,
    log: Logger,
  ) {
    this.name = settings.name;
    this.timeoutMs = settings.timeoutMs;
    const onDeliver = async (pdu: DeliverSm) => {
      const receipt = smppReceipt(settings.name, pdu, new Date());
      if (receipt !== undefined) await receipts(receipt);
      return true;
    };
    this.binds = Array.from({ length: settings.binds }, (_, i) => new SmppBind(settings, i, onDeliver, log));
    for (const bind of this.binds) bind.start();
  }

  /** Binds bound now (for health and tests). */
  get boundCount(): number {
    return this.binds.filter((b) => b.isBound).length;
  }

  async submit(message: OutboundMessage, signal: AbortSignal): Promise<SubmitResult> {
    if (message.channel !== "sms") throw new ProviderError(`SMPP sends sms, not ${message.channel}`, false, "unsupported_channel");
    const bind = this.pickBind();
    if (bind === undefined) throw new ProviderError(`no SMPP bind of ${this.name} is bound with room in its window`, true, "smpp_unbound");
    const { encoding } = smsSize(message.text);
    const parts = splitParts(message.text, encoding);
    // A number sender goes as an international number (TON 1, ISDN), without its "+"; a name as alphanumeric (TON 5).
    const numberSender = /^\+?\d+$/.test(message.sender);
    const common = {
      source_addr: numberSender ? message.sender.replace(/^\+/, "") : message.sender,
      source_addr_ton: numberSender ? 1 : 5,
      source_addr_npi: numberSender ? 1 : 0,
      destination_addr: message.to.replace(/^\+/, ""),
      dest_addr_ton: 1,
      dest_addr_npi: 1,
      registered_delivery: 1,
      data_coding: DATA_CODING[encoding],
    };
    if (parts.length === 1) return { providerMessageId: await bind.submit({ short_message: { message: message.text }, ...common }, signal), delivered: false };
    // Concatenated: every part on the same bind, the first part's id names the message (its receipt decides).
    this.reference = (this.reference + 1) % 256;
    let first: string | undefined;
    for (const [i, part] of parts.entries()) {
      const udh = Buffer.from([0x05, 0x00, 0x03, this.reference, parts.length, i + 1]);
      try {
        const id = await bind.submit({ short_message: { udh, message: part }, ...common }, signal);
        first ??= id;
      } catch (error) {
        // A later part failing after the first went out: the person may hold part of the code's message.
        if (first !== undefined && error instanceof ProviderError) throw new ProviderError(error.message, error.retryable, error.code, true);
        throw error;
      }
    }
    return { providerMessageId: first!, delivered: false };
  }

  async close(): Promise<void> {
    await Promise.all(this.binds.map((b) => b.close()));
  }

  private pickBind(): SmppBind | undefined {
    for (let i = 0; i < this.binds.length; i++) {
      const bind = this.binds[(this.next + i) % this.binds.length]!;
      if (bind.available) {
        this.next = (this.next + i + 1) % this.binds.length;
        return bind;
      }
    }
    return undefined;
  }
}

/** The text in parts of a concatenated message, never splitting a GSM-7 escape pair or a UTF-16 surrogate pair. */
export function splitParts(text: string, encoding: "GSM7" | "UCS2"): string[] {
  if (smsSize(text).segments === 1) return [text];
  const parts: string[] = [];
  let current = "";
  let units = 0;
  for (const ch of text) {
    const size = encoding === "GSM7" ? (GSM7_EXTENSION.has(ch) ? 2 : 1) : ch.length;
    if (units + size > PART_UNITS[encoding]) {
      parts.push(current);
      current = "";
      units = 0;
    }
    current += ch;
    units += size;
  }
  parts.push(current);
  return parts;
}
