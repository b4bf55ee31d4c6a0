import { HealthCheckResponse_ServingStatus as Serving } from "../gen/grpc/health/v1/health_pb.js";
import type { Config } from "./config/config.js";
import { DevInbox } from "./dev/dev-inbox.js";
import { openRuntime, startWorkers, type AppOptions } from "./runtime.js";
import { jsonLogger } from "./telemetry/logger.js";
import { HealthRegistry } from "./transport/health.js";
import { startHttpServer } from "./transport/http-server.js";
import { metricsPage } from "./transport/metrics-page.js";

export interface RunningWorker {
  /** The health port (grpc.health.v1 and `/metrics`). */
  readonly healthPort: number;
  /** Stops pulling, lets sends in flight finish and record their outcome, then closes. */
  stop(): Promise<void>;
}

/**
 * The `worker` role: JetStream consumers for the configured channels, sending through the configured providers.
 * Its health port opens first, NOT_SERVING while the worker waits for its database and NATS, SERVING once its
 * consumers are bound, NOT_SERVING again as soon as it starts to drain.
 */
export async function startWorker(config: Config, options: AppOptions = {}): Promise<RunningWorker> {
  const log = options.log ?? jsonLogger(config.role, config.logLevel);
  const health = new HealthRegistry();
  health.set("", Serving.NOT_SERVING);
  const shutdown = new AbortController();
  const server = await startHttpServer({
    host: config.host,
    port: config.healthPort,
    health,
    pages: [metricsPage],
    shutdownSignal: shutdown.signal,
    limits: config.connections,
  });
  log.info("health port open; starting", { healthPort: server.port });
  try {
    const runtime = await openRuntime(config, { ...options, log });
    // Sandbox routes on a worker deliver to an inbox nobody reads: configure real providers here.
    const stopWorkers = await startWorkers(runtime, config, new DevInbox());
    health.set("", Serving.SERVING);
    log.info("consuming", { channels: config.workerChannels, concurrency: config.workerConcurrency, healthPort: server.port });
    return {
      healthPort: server.port,
      stop: async () => {
        health.shutdown();
        await stopWorkers();
        await runtime.close();
        shutdown.abort();
        await server.close(1_000);
        log.info("stopped");
      },
    };
  } catch (error) {
    await server.close(0);
    throw error;
  }
}
