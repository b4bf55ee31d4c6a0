import type { Channel } from "../domain/channel.js";
import type { CodeProtector } from "../domain/code-protector.js";
import type { AbuseLimits } from "../domain/limits.js";
import type { MessageCatalogue } from "../domain/messages/catalogue.js";
import type { Policy } from "../domain/plan.js";
import type { Clock, IdGenerator, RandomSource } from "../domain/ports.js";
import type { Route, RouteHealth } from "../domain/route.js";
import type { DailySpendCap } from "../domain/spend-cap.js";
import type { Db } from "../store/database.js";
import type { WatchStart, WatchStartQuery } from "../store/repositories/delivery-events.js";
import type { NewVerificationWrite } from "../store/repositories/new-verification.js";
import type { OnOutboxWritten } from "../store/repositories/outbox.js";
import type { SendAdmission, SendAdmissionQuery } from "../store/repositories/send-admission.js";
import type { VerificationRow } from "../store/tables/verifications.js";
import type { GroupRunner } from "../util/group-runner.js";

/** Routes and fallback policies the service plans with. */
export interface Catalogue {
  readonly routes: readonly Route[];
  readonly policies: ReadonlyMap<string, Policy>;
}

/** Everything the use cases need, passed in so tests control time, randomness and storage. */
export interface ServiceDeps {
  readonly db: Db;
  /** Counts sends in their limit windows, many sends per statement (`sendAdmissions(db)`). */
  readonly sendAdmissions: GroupRunner<SendAdmissionQuery, SendAdmission>;
  /** Writes unmetered callers' new verifications, many per statement (`unmeteredWrites(db)`). */
  readonly unmeteredWrites: GroupRunner<NewVerificationWrite, VerificationRow>;
  /** Reads verifications' last event numbers for watchers' keep-alives, many per statement (`eventSeqReads(db)`). */
  readonly eventSeqReads: GroupRunner<string, number | undefined>;
  /** Reads WatchDelivery streams' openings, many per statement (`watchStarts(db)`). */
  readonly watchStarts: GroupRunner<WatchStartQuery, WatchStart | undefined>;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly random: RandomSource;
  readonly protector: CodeProtector;
  readonly limits: AbuseLimits;
  readonly catalogue: Catalogue;
  /** Routes' recent delivery rates, for choosing among them; all healthy when absent. */
  readonly routeHealth?: (routeId: string) => RouteHealth | undefined;
  /** Why SMS and calls to a number are refused (its prefix is blocked as SMS pumping); none refused when absent. */
  readonly phoneBlocked?: (phone: string) => string | undefined;
  /** Callers' daily spend caps per destination country, by caller id; a caller without one is not capped. */
  readonly spendCaps?: ReadonlyMap<string, DailySpendCap>;
  /** Message texts with the operator's replacements; the shipped ones when unset. */
  readonly messages?: MessageCatalogue;
  /** Called after a commit that wrote outbox rows, with their messages: they are published right away. */
  readonly onOutboxWritten: OnOutboxWritten;
}

/** The authenticated service on whose behalf a call runs. */
export interface Caller {
  readonly id: string;
  /** Channels this caller may use; all when undefined. */
  readonly channels?: readonly Channel[];
  /** Destination countries (ISO 3166-1 alpha-2) this caller may send to; all when undefined. */
  readonly countries?: readonly string[];
  /** Route ids this caller may use; all when undefined. */
  readonly routes?: readonly string[];
  /** Senders this caller may name in overrides, besides each route's own. */
  readonly senders?: readonly string[];
}
