// The subset of the `smpp` package (0.5.x, CommonJS, untyped) this project uses. Its constants are set in a loop,
// so Node's ESM loader cannot see them as named exports: import the module's default (`import smpp from "smpp"`).
declare module "smpp" {
  import type { EventEmitter } from "node:events";
  import type { Server as NetServer, Socket } from "node:net";

  namespace smpp {
    interface Pdu {
      readonly command: string;
      readonly command_status: number;
      readonly sequence_number: number;
      readonly [field: string]: unknown;
      response(fields?: Record<string, unknown>): Pdu;
    }

    class Session extends EventEmitter {
      readonly socket: Socket;
      send(pdu: Pdu, onResponse?: (pdu: Pdu) => void): boolean;
      close(callback?: () => void): void;
      destroy(callback?: () => void): void;
      bind_transceiver(fields: Record<string, unknown>, onResponse?: (pdu: Pdu) => void): boolean;
      submit_sm(fields: Record<string, unknown>, onResponse?: (pdu: Pdu) => void): boolean;
      deliver_sm(fields: Record<string, unknown>, onResponse?: (pdu: Pdu) => void): boolean;
      unbind(fields?: Record<string, unknown>, onResponse?: (pdu: Pdu) => void): boolean;
    }

    interface ConnectOptions {
      readonly host: string;
      readonly port: number;
      readonly tls?: boolean;
      /** Passed on to tls.connect. */
      readonly ca?: string;
      readonly auto_enquire_link_period?: number;
    }

    function connect(options: ConnectOptions, onConnect?: () => void): Session;
    function createServer(listener: (session: Session) => void): NetServer;
    /** With a key and certificate: an SMPP server over TLS. */
    function createServer(options: { readonly key: string; readonly cert: string }, listener: (session: Session) => void): NetServer;

    const ESME_ROK: number;
    const ESME_RTHROTTLED: number;
    const ESME_RMSGQFUL: number;
    const ESME_RSYSERR: number;
    const ESME_RINVDSTADR: number;
    const ESME_RBINDFAIL: number;
    const ESME_RX_T_APPN: number;
  }

  export = smpp;
}
