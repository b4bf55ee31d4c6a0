import type { Config } from "./config/config.js";
import { DevInbox } from "./dev/dev-inbox.js";
import { openRuntime, startWorkers, type AppOptions } from "./runtime.js";

export interface RunningWorker {
  /** Stops pulling, lets sends in flight finish and record their outcome, then closes. */
  stop(): Promise<void>;
}

/** The `worker` role: JetStream consumers for the configured channels, sending through the configured providers. */
export async function startWorker(config: Config, options: AppOptions = {}): Promise<RunningWorker> {
  const runtime = await openRuntime(config, options);
  // Sandbox routes on a worker deliver to an inbox nobody reads: configure real providers here.
  const stopWorkers = await startWorkers(runtime, config, new DevInbox());
  runtime.log.info("consuming", { channels: config.workerChannels, concurrency: config.workerConcurrency });
  return {
    stop: async () => {
      await stopWorkers();
      await runtime.close();
      runtime.log.info("stopped");
    },
  };
}
