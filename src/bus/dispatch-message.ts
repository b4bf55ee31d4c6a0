import type { Channel } from "../domain/channel.js";
import type { RenderOptions } from "../domain/message.js";

/**
 * What a channel worker needs to send one attempt. Internal to our processes,
 * encoded as JSON. It carries the code only sealed (AES-256-GCM).
 */
export interface DispatchMessage {
  readonly attemptId: string;
  readonly verificationId: string;
  readonly channel: Channel;
  readonly routeId: string;
  readonly provider: string;
  readonly sender: string;
  readonly to: string;
  readonly sealedCode: string;
  readonly render: RenderOptions;
  /** Whose verification: its texts replace the shipped ones (absent in messages queued before it was carried). */
  readonly callerId?: string;
  readonly expiresAt: string;
}

export function encodeDispatch(message: DispatchMessage): Uint8Array {
  return Buffer.from(JSON.stringify(message));
}

export function decodeDispatch(data: Uint8Array): DispatchMessage {
  return JSON.parse(Buffer.from(data).toString("utf8")) as DispatchMessage;
}
