import { DEFAULT_POLICIES, SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import { CodeProtector } from "../../src/domain/code-protector.js";
import { DEFAULT_LIMITS, type AbuseLimits } from "../../src/domain/limits.js";
import { cryptoRandom, uuidIds } from "../../src/domain/ports.js";
import type { Route } from "../../src/domain/route.js";
import type { Catalogue, ServiceDeps } from "../../src/service/deps.js";
import type { SendOtpCommand } from "../../src/service/send-otp.js";
import { sendAdmissions } from "../../src/service/send-limits.js";
import { unmeteredWrites } from "../../src/service/send-otp.js";
import { eventSeqReads, watchStarts } from "../../src/service/watch-delivery.js";
import type { Db } from "../../src/store/database.js";
import { continueOrStartTrace, type TraceContext } from "../../src/telemetry/trace-context.js";
import { FakeClock } from "./fakes.js";

export const TEST_KEYS = { hashKey: Buffer.alloc(32, 11), sealKey: Buffer.alloc(32, 22) };

export function serviceDeps(db: Db, options: { clock?: FakeClock; limits?: Partial<AbuseLimits>; catalogue?: Catalogue } = {}): ServiceDeps & { clock: FakeClock } {
  return {
    db,
    sendAdmissions: sendAdmissions(db),
    unmeteredWrites: unmeteredWrites(db),
    eventSeqReads: eventSeqReads(db),
    watchStarts: watchStarts(db),
    clock: options.clock ?? new FakeClock(),
    ids: uuidIds,
    random: cryptoRandom,
    protector: new CodeProtector(TEST_KEYS, cryptoRandom),
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    catalogue: options.catalogue ?? { routes: SANDBOX_ROUTES, policies: DEFAULT_POLICIES },
    onOutboxWritten: () => {},
  };
}

/** The sandbox route of a channel under another id (`<idPrefix>-<channel>`), at one price for every country. */
export function pricedRoute(channel: Route["channel"], micros: number, idPrefix = "priced"): Route {
  return { ...SANDBOX_ROUTES.find((r) => r.channel === channel)!, id: `${idPrefix}-${channel}`, pricesMicros: { "*": micros } };
}

let phones = 0;
/**
 * A valid Dutch mobile number not used by another test in this process. Consecutive numbers differ in their
 * hundreds, not their last digits: a run of sequential numbers is what the number-range limit refuses.
 */
export function uniquePhone(): string {
  phones += 1;
  const spread = `${String(phones % 100).padStart(2, "0")}${String(Math.floor(phones / 100) % 100).padStart(2, "0")}`;
  return `+3161${String(process.pid % 1000).padStart(3, "0")}${spread}`;
}

export function sendCommand(overrides: Partial<SendOtpCommand> = {}): SendOtpCommand {
  return {
    destination: { phone: uniquePhone() },
    policy: "",
    render: { brand: "Acme" },
    codeLength: 6,
    idempotencyKey: "",
    ttlMs: 600_000,
    clientReference: "",
    metadata: {},
    ...overrides,
  };
}

export function newTrace(): TraceContext {
  return continueOrStartTrace(undefined, cryptoRandom);
}
