/**
 * Runs requests in groups: requests that arrive while `maxInFlight` groups run
 * wait and run together as the next one. So many concurrent requests share
 * one statement (one round trip, one commit, one lock of each row they share)
 * instead of queueing on each other's row locks, and a lone request waits
 * only for the end of the current event-loop turn.
 *
 * With `gatherMs`, a group waits that long after its first request for more
 * (for requests that are not in a hurry but arrive a few milliseconds apart).
 *
 * `run` answers a group in order, one result per request, and must do all of
 * a group or none of it (one statement): a group that fails is run again one
 * request at a time, so a request fails only for its own error.
 */
export class GroupRunner<Request, Result> {
  private readonly waiting: Array<{ readonly request: Request; resolve(result: Result): void; reject(error: unknown): void }> = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly run: (requests: readonly Request[]) => Promise<readonly Result[]>,
    private readonly limits: { readonly maxGroup: number; readonly maxInFlight: number; readonly gatherMs?: number },
    /** Told each group's size as it starts (a metric). */
    private readonly onGroup: (size: number) => void = () => {},
  ) {}

  submit(request: Request): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      if (!this.scheduled && this.inFlight < this.limits.maxInFlight) {
        this.scheduled = true;
        const start = () => {
          this.scheduled = false;
          this.startGroups();
        };
        // Requests that arrive in the same turn (one read of a connection carries many calls) join the same group.
        if (this.limits.gatherMs === undefined) setImmediate(start);
        else setTimeout(start, this.limits.gatherMs);
      }
    });
  }

  private startGroups(): void {
    while (this.waiting.length > 0 && this.inFlight < this.limits.maxInFlight) {
      const group = this.waiting.splice(0, this.limits.maxGroup);
      this.onGroup(group.length);
      this.inFlight += 1;
      void this.runGroup(group).finally(() => {
        this.inFlight -= 1;
        this.startGroups();
      });
    }
  }

  private async runGroup(group: Array<{ readonly request: Request; resolve(result: Result): void; reject(error: unknown): void }>): Promise<void> {
    try {
      const results = await this.run(group.map((g) => g.request));
      if (results.length !== group.length) throw new Error(`a group of ${group.length} was answered with ${results.length} results`);
      group.forEach((g, i) => g.resolve(results[i]!));
    } catch (error) {
      if (group.length === 1) group[0]!.reject(error);
      else await Promise.all(group.map((g) => this.run([g.request]).then(([result]) => g.resolve(result!), g.reject)));
    }
  }
}
