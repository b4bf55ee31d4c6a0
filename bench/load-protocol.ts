/** What the bench asks its load generator process (bench/load-process.ts) over IPC, and what it answers. */
import type { LoadResult } from "./load.js";

/** The call a measure repeats. */
export type Call =
  | { readonly kind: "check" } // grpc.health.v1 Check
  | { readonly kind: "send"; readonly callers: number } // SendOtp, each caller slot as one of `callers` callers (0: no credentials, the dev role)
  | { readonly kind: "verify-wrong" } // VerifyOtp with a wrong code, over the verifications sent so far
  | { readonly kind: "verify-right"; readonly codes: ReadonlyArray<readonly [string, string]> } // VerifyOtp with the right code, each [verification, code] once
  | { readonly kind: "flow"; readonly callers: number }; // SendOtp, then WatchDelivery until ATTEMPT_DELIVERED

/** `saturate` or `atRate` of bench/load.ts, run in the load generator's process. */
export type Measure = { readonly name: string; readonly call: Call } & (
  | { readonly mode: "saturate"; readonly seconds: number; readonly concurrency: number }
  | { readonly mode: "rate"; readonly rate: number; readonly seconds: number }
);

/** A measure to run; without one, only the count of sends is asked for. */
export interface LoadRequest {
  readonly id: number;
  readonly measure?: Measure;
}

/** The answer to request `id` (0: the process is ready), with how many SendOtp calls succeeded so far. */
export interface LoadReply {
  readonly id: number;
  readonly result?: LoadResult;
  readonly error?: string;
  readonly sent: number;
}
