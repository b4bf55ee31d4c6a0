import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";

/**
 * grpc.health.v1 for Kubernetes gRPC probes and meshes. "" is the server as a
 * whole. On shutdown every service goes NOT_SERVING first, so probes stop
 * routing traffic before connections close.
 */
export class HealthRegistry {
  private readonly statuses = new Map<string, Status>();
  private readonly watchers = new Set<() => void>();

  set(service: string, status: Status): void {
    this.statuses.set(service, status);
    for (const notify of this.watchers) notify();
  }

  /** Marks every known service NOT_SERVING. */
  shutdown(): void {
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
    let last: Status | undefined;
    let changed: (() => void) | undefined;
    const notify = () => changed?.();
    this.watchers.add(notify);
    const onAbort = () => changed?.();
    signal.addEventListener("abort", onAbort);
    try {
      while (!signal.aborted) {
        const status = this.get(service) ?? Status.SERVICE_UNKNOWN;
        if (status !== last) {
          last = status;
          yield { status };
        }
        await new Promise<void>((resolve) => (changed = resolve));
      }
    } finally {
      this.watchers.delete(notify);
      signal.removeEventListener("abort", onAbort);
    }
  }
}
