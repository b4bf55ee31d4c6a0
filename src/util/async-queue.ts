/**
 * An unbounded FIFO that a single consumer awaits, with a timeout and an
 * abort signal, so a stream can wait for "the next item, or a deadline, or the
 * client going away" without polling.
 */
export class AsyncQueue<T> {
  private readonly items: T[] = [];
  private waiter: (() => void) | undefined;

  push(item: T): void {
    this.items.push(item);
    this.waiter?.();
  }

  /** The next item; `undefined` when `timeoutMs` passes or `signal` aborts first. */
  async next(timeoutMs: number, signal?: AbortSignal): Promise<T | undefined> {
    if (this.items.length > 0) return this.items.shift();
    if (signal?.aborted) return undefined;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        this.waiter = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      signal?.addEventListener("abort", done);
      this.waiter = done;
    });
    return this.items.shift();
  }
}
