import { errorFields, type Logger } from "../telemetry/logger.js";

const MAX_BACKOFF_MS = 5_000;

/**
 * Runs `tick` again and again: right away when woken, else every `intervalMs`.
 * `tick` returns how much it did; a full batch runs the next tick at once.
 * A failing tick is logged and retried after a growing pause (up to 5 s): loops never die.
 */
export class PeriodicLoop {
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private running: Promise<void> | undefined;
  private stopping = false;
  private failures = 0;

  constructor(
    private readonly name: string,
    private readonly tick: () => Promise<{ more: boolean }>,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.running ??= this.run();
  }

  /** Run the next tick now instead of at the next interval. */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeUp?.();
    const slow = setTimeout(() => this.log.warn(`${this.name}: still finishing its current run`), 5_000);
    await this.running;
    clearTimeout(slow);
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      this.woken = false;
      let more = false;
      try {
        more = (await this.tick()).more;
        if (this.failures > 0) this.log.info(`${this.name} recovered`, { failures: this.failures });
        this.failures = 0;
      } catch (error) {
        this.failures += 1;
        this.log.warn(`${this.name} failed; retrying`, { failures: this.failures, ...errorFields(error) });
      }
      if (!more && !this.woken && !this.stopping) {
        // After failures (a dependency away), wait longer each time, up to MAX_BACKOFF_MS.
        const waitMs = this.failures === 0 ? this.intervalMs : Math.min(MAX_BACKOFF_MS, this.intervalMs * 2 ** this.failures);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, waitMs);
          function done() {
            clearTimeout(timer);
            resolve();
          }
          this.wakeUp = done;
        });
        this.wakeUp = undefined;
      }
    }
  }
}
