/**
 * Spaces sends `1000 / perSecond` ms apart: a per-bind throughput cap the SMSC would otherwise enforce with
 * ESME_RTHROTTLED. `reserve` books the next free slot and says how long to wait for it.
 */
export class SendSpacing {
  private readonly intervalMs: number;
  private nextAt = 0;

  constructor(perSecond: number) {
    this.intervalMs = 1_000 / perSecond;
  }

  reserve(now: number): number {
    const at = Math.max(now, this.nextAt);
    this.nextAt = at + this.intervalMs;
    return at - now;
  }
}
