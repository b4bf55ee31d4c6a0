import type { Bus, Consumer } from "../bus/bus.js";
import { dispatchSubject } from "../bus/subjects.js";
import type { Channel } from "../domain/channel.js";
import { createAttemptHandler, type AttemptHandlerDeps } from "./attempt-handler.js";

export interface ChannelWorkerOptions {
  readonly channels: readonly Channel[];
  /** Attempts sent at once per channel; further messages wait on the bus (back-pressure). */
  readonly concurrency: number;
  readonly maxDeliver: number;
}

/** Starts one durable consumer per channel. Returns a function that stops them after in-flight sends finish. */
export async function startChannelWorkers(bus: Bus, deps: AttemptHandlerDeps, options: ChannelWorkerOptions): Promise<() => Promise<void>> {
  const handler = createAttemptHandler(deps);
  const consumers: Consumer[] = [];
  for (const channel of options.channels) {
    consumers.push(
      await bus.consume(
        { durable: `worker-${channel}`, subjects: [dispatchSubject(channel)], maxInFlight: options.concurrency, maxDeliver: options.maxDeliver },
        handler,
      ),
    );
  }
  return async () => {
    await Promise.all(consumers.map((c) => c.stop()));
  };
}
