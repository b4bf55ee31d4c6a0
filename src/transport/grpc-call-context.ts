import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type ContextValues, type HandlerContext } from "@connectrpc/connect";

const TIMED_OUT = new ConnectError("the operation timed out", Code.DeadlineExceeded);

/**
 * The calls whose handlers hold a signal, all ended by one listener on the
 * server's shutdown signal. A listener per call made each new stream cost
 * time in proportion to the streams open: an AbortSignal's addEventListener
 * and removeEventListener walk its listeners (thousands, with thousands of
 * WatchDelivery streams open).
 */
export class OpenCalls {
  private readonly calls = new Set<CallContext>();

  constructor(readonly shutdownSignal: AbortSignal) {
    shutdownSignal.addEventListener("abort", () => {
      for (const call of this.calls) call.end(shutdownSignal.reason);
    });
  }

  add(call: CallContext): void {
    this.calls.add(call);
  }

  delete(call: CallContext): void {
    this.calls.delete(call);
  }

  get size(): number {
    return this.calls.size;
  }
}

/**
 * A call's HandlerContext (what connect's `createHandlerContext` makes, for
 * the gRPC port). Its signal, and the response headers nothing here sends, are
 * made only when a handler asks for them: a unary handler never reads its
 * signal. In Node 20 each AbortSignal gets a hidden class of its own (it is
 * built with Object.setPrototypeOf), so every signal costs a new map in the
 * old generation and is promoted with it; `createHandlerContext` made three
 * per call, linked by listeners (BENCHMARKS.md, 2026-12-06 (4)).
 */
export class CallContext implements HandlerContext {
  readonly protocolName = "grpc";
  readonly requestMethod = "POST";
  private controller: AbortController | undefined;
  private ended = false;
  private endReason: unknown;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private lazyValues: ContextValues | undefined;
  private lazyResponseHeader: Headers | undefined;
  private lazyResponseTrailer: Headers | undefined;

  constructor(
    readonly service: DescService,
    readonly method: DescMethod,
    readonly url: string,
    readonly requestHeader: Headers,
    /** When the caller stops waiting (epoch ms), if it said. */
    private readonly deadline: number | undefined,
    private readonly openCalls: OpenCalls,
  ) {}

  /** Aborted when the call ends (its stream closed), its deadline passes or the server shuts down. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      const shutdown = this.openCalls.shutdownSignal;
      if (this.ended) this.controller.abort(this.endReason);
      else if (shutdown.aborted) this.controller.abort(shutdown.reason);
      else {
        this.openCalls.add(this);
        if (this.deadline !== undefined) this.deadlineTimer = setTimeout(() => this.end(TIMED_OUT), Math.max(0, this.deadline - Date.now()));
      }
    }
    return this.controller.signal;
  }

  readonly timeoutMs = (): number | undefined => (this.deadline === undefined ? undefined : this.deadline - Date.now());

  get values(): ContextValues {
    return (this.lazyValues ??= createContextValues());
  }

  get responseHeader(): Headers {
    return (this.lazyResponseHeader ??= new Headers());
  }

  get responseTrailer(): Headers {
    return (this.lazyResponseTrailer ??= new Headers());
  }

  /** The first reason given is the signal's. */
  end(reason: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.endReason = reason;
    if (this.controller === undefined) return;
    clearTimeout(this.deadlineTimer);
    this.openCalls.delete(this);
    this.controller.abort(reason);
  }
}
