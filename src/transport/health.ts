import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";

/**
 * The service name of liveness probes: SERVING from the moment the port answers until shutdown, whatever the
 * dependencies do. A database or NATS outage makes a replica NOT_SERVING ("" and OtpService, for readiness and
 * meshes), never restarted: restarting every pod would not bring the database back sooner.
 */
export const LIVENESS = "liveness";

/**
 * grpc.health.v1 for Kubernetes gRPC probes and meshes. "" is the server as a
 * whole (readiness), LIVENESS the process itself. On shutdown every service goes
 * NOT_SERVING first, so probes stop routing traffic before connections close.
 */
export class HealthRegistry {
  private readonly statuses = new Map<string, Status>([[LIVENESS, Status.SERVING]]);
  private readonly watchers = new Set<() => void>();
  private stopping = false;

  /** True once `shutdown` has been called. */
  get shuttingDown(): boolean {
    return this.stopping;
  }

  /** After `shutdown` every service stays NOT_SERVING, whatever a dependency probe still finds. */
  set(service: string, status: Status): void {
    this.statuses.set(service, this.stopping ? Status.NOT_SERVING : status);
    for (const notify of this.watchers) notify();
  }

  /** Marks every known service NOT_SERVING. */
  shutdown(): void {
    this.stopping = true;
    for (const service of this.statuses.keys()) this.set(service, Status.NOT_SERVING);
  }

  get(service: string): Status | undefined {
    return this.statuses.get(service);
  }

  impl(): ServiceImpl<typeof Health> {
    return {
      check: (request) => {
        const status = this.get(request.service);
        if (status === undefined) throw new ConnectError(`unknown service ${request.service}`, Code.NotFound);
        return { status };
      },
      watch: (request, context) => this.watch(request.service, context.signal),
    };
  }

  private async *watch(service: string, signal: AbortSignal) {
    // A change that lands while the consumer holds the last status must not be
    // lost: `dirty` records it, and the loop only sleeps when nothing changed.
    let dirty = true;
    let wake: (() => void) | undefined;
    const notify = () => {
      dirty = true;
      wake?.();
    };
    this.watchers.add(notify);
    signal.addEventListener("abort", notify);
    let last: Status | undefined;
    try {
      while (!signal.aborted) {
        if (!dirty) await new Promise<void>((resolve) => (wake = resolve));
        dirty = false;
        const status = this.get(service) ?? Status.SERVICE_UNKNOWN;
        if (status !== last && !signal.aborted) {
          last = status;
          yield { status };
        }
      }
    } finally {
      this.watchers.delete(notify);
      signal.removeEventListener("abort", notify);
    }
  }
}
