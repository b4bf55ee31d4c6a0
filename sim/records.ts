/** What a run recorded, in ms since the run started: the input of the report. */

export type SimChannel = "sms" | "email" | "voice";

/** A message a provider peer took for an address. */
export interface Take {
  readonly channel: SimChannel;
  readonly routeId: string;
  readonly priceEur: number;
  readonly at: number;
  /** When the person got it; undefined when the network lost it. */
  readonly arrivesAt?: number;
}

export interface UserRecord {
  readonly id: number;
  readonly cohort: string;
  readonly warmUp: boolean;
  /** When SendOtp was called. */
  requestedAt: number;
  /** SendOtp's answer; undefined when it was refused. */
  sent?: { readonly verificationId: string; readonly firstRouteId: string };
  /** SendOtp's error, when it refused. */
  refused?: string;
  /** Every message providers took for this person's addresses. */
  readonly takes: Take[];
  /** When the person first held a code, and through which channel. */
  holdAt?: number;
  holdChannel?: SimChannel;
  /** When VerifyOtp approved their code. */
  verifiedAt?: number;
  /** VerifyOtp's answer when it was not APPROVED. */
  verifyFailure?: string;
}

export interface AttackRecord {
  readonly prefix: string;
  requests: number;
  /** SendOtp calls refused, and when the first was. */
  refused: number;
  firstRefusedAt?: number;
  firstRefusal?: string;
  /** Messages providers took for numbers in the prefix. */
  readonly takes: Take[];
}

export interface RunRecord {
  readonly mode: "full" | "ci";
  readonly seed: number;
  readonly variant: DeadlineVariant;
  readonly warmUpMs: number;
  /** The DE route's incident: when it began, the route, and the healthy route that should take over. */
  readonly degrade?: { readonly atMs: number; readonly routeId: string; readonly backupRouteId: string };
  readonly users: readonly UserRecord[];
  readonly attack: AttackRecord;
  readonly durationMs: number;
}

/** The SMS step's deadline: `auto` (the route's measured p95 receipt latency, 2–30 s) or a fixed 15 s ("before"). */
export type DeadlineVariant = "auto" | "fixed";
