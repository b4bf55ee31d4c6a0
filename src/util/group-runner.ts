/**
 * Runs requests in groups, one group at a time: requests that arrive while a
 * group runs wait and run together as the next one. So many concurrent
 * requests share one statement (one round trip, one commit, one lock of each
 * row they share) instead of queueing on each other's row locks, and a lone
 * request waits only for the end of the current event-loop turn.
 *
 * `run` answers a group in order, one result per request; if it throws, every
 * request of that group fails with its error.
 */
export class GroupRunner<Request, Result> {
  private waiting: Array<{ readonly request: Request; resolve(result: Result): void; reject(error: unknown): void }> = [];
  private running = false;

  constructor(
    private readonly run: (requests: readonly Request[]) => Promise<readonly Result[]>,
    private readonly maxGroup: number,
  ) {}

  submit(request: Request): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      if (!this.running) {
        this.running = true;
        // Requests that arrive in the same turn (one read of a connection carries many calls) join the first group.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.waiting.length > 0) {
      const group = this.waiting.splice(0, this.maxGroup);
      try {
        const results = await this.run(group.map((g) => g.request));
        if (results.length !== group.length) throw new Error(`a group of ${group.length} was answered with ${results.length} results`);
        group.forEach((g, i) => g.resolve(results[i]!));
      } catch (error) {
        for (const g of group) g.reject(error);
      }
    }
    this.running = false;
  }
}
