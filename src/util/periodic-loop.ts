import { errorFields, type Logger } from "../telemetry/logger.js";

/**
 * Runs `tick` again and again: right away when woken, else every `intervalMs`.
 * `tick` returns how much it did; a full batch runs the next tick at once.
 * A failing tick is logged and retried after the interval: loops never die.
 */
export class PeriodicLoop {
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private running: Promise<void> | undefined;
  private stopping = false;

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
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      this.woken = false;
      let more = false;
      try {
        more = (await this.tick()).more;
      } catch (error) {
        this.log.warn(`${this.name} failed; retrying`, errorFields(error));
      }
      if (!more && !this.woken && !this.stopping) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, this.intervalMs);
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
