import { numberPrefix } from "../domain/destination.js";
import type { Clock } from "../domain/ports.js";
import { allowedNumber, pumpingVerdict, type PumpingSettings } from "../domain/pumping.js";
import type { Executor } from "../store/database.js";
import { busyPrefixes } from "../store/repositories/conversion-stats.js";
import { activePrefixBlocks, recordPrefixBlocks } from "../store/repositories/prefix-blocks.js";
import type { PrefixBlockRow } from "../store/tables/prefix-blocks.js";
import type { Logger } from "../telemetry/logger.js";
import { otpMetrics } from "../telemetry/metrics.js";

/**
 * Finds number prefixes being pumped (`refresh`: every replica judges the same shared counts; the first to flag a
 * prefix writes its row, and reports it) and answers, synchronously while planning, whether a phone number's
 * prefix is blocked. Flags live in the database, so they outlast restarts and an operator can lift one.
 */
export class PumpingGuard {
  private flags = new Map<string, PrefixBlockRow>();

  constructor(
    private readonly db: Executor,
    private readonly clock: Clock,
    private readonly settings: PumpingSettings,
    private readonly prefixDigits: number,
    private readonly log: Logger,
  ) {}

  async refresh(): Promise<void> {
    const now = this.clock.now();
    if (this.settings.mode !== "off") await this.flagNew(now);
    const active = await activePrefixBlocks(this.db, now);
    this.flags = new Map(active.map((row) => [row.prefix, row]));
  }

  /** Prefixes flagged now, blocked or monitored: route conversion leaves them out. */
  flagged(): readonly string[] {
    return [...this.flags.keys()];
  }

  /** Why SMS and calls to `phone` are refused, if its prefix is blocked. */
  readonly blockedReason = (phone: string): string | undefined => {
    const flag = this.flags.get(numberPrefix(phone, this.prefixDigits));
    if (flag === undefined || flag.mode !== "block" || flag.until <= this.clock.now() || allowedNumber(phone, this.settings)) return undefined;
    return `numbers starting ${flag.prefix} are blocked until ${flag.until.toISOString()} as SMS pumping: ${flag.reason}`;
  };

  private async flagNew(now: Date): Promise<void> {
    const since = new Date(now.getTime() - this.settings.windowMs);
    const mode = this.settings.mode === "monitor" ? "monitor" : "block";
    const flags = [];
    for (const p of await busyPrefixes(this.db, since, this.settings.minSends)) {
      const current = this.flags.get(p.prefix);
      if (current !== undefined && current.mode === mode && current.until > now) continue;
      const reason = pumpingVerdict(
        { prefix: p.prefix, country: p.country, own: { sent: p.sent, approved: p.approved }, quiet: { sent: p.quietSent, approved: p.quietApproved } },
        this.settings,
      );
      if (reason === undefined) continue;
      flags.push({ prefix: p.prefix, country: p.country, mode, reason, blocked_at: now, until: new Date(now.getTime() + this.settings.blockMs) } as const);
    }
    for (const row of await recordPrefixBlocks(this.db, flags)) {
      otpMetrics.pumpingFlagged(row.country, row.mode);
      const what = row.mode === "block" ? `SMS and calls to it refused until ${row.until.toISOString()}` : "monitor mode: nothing refused";
      this.log.warn(`SMS pumping suspected on prefix ${row.prefix}: ${row.reason}; ${what}`, { prefix: row.prefix, country: row.country, mode: row.mode });
    }
  }
}
