import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { readBody, stopServer } from "./loopback-http.js";

/** One received span, flattened from OTLP/JSON: ids as hex, attributes as plain values. */
export interface ReceivedSpan {
  readonly service: string;
  readonly name: string;
  readonly kind: number;
  readonly traceId: string;
  readonly spanId: string;
  /** Empty for a root span. */
  readonly parentSpanId: string;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  readonly links: ReadonlyArray<{ readonly traceId: string; readonly spanId: string }>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: Array<{ key: string; value: OtlpValue }>;
  links?: Array<{ traceId: string; spanId: string }>;
}
interface OtlpTraces {
  resourceSpans?: Array<{
    resource?: { attributes?: Array<{ key: string; value: OtlpValue }> };
    scopeSpans?: Array<{ spans?: OtlpSpan[] }>;
  }>;
}

/**
 * An OTLP/HTTP receiver on loopback, as an OpenTelemetry Collector would be
 * (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`): keeps every span exported to
 * `/v1/traces`, answers the other signals with an empty success.
 */
export class OtlpPeer {
  readonly spans: ReceivedSpan[] = [];
  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<OtlpPeer> {
    const server = http.createServer();
    const peer = new OtlpPeer(server);
    server.on("request", (req, res) => void peer.handle(req, res));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return peer;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The environment that points a process's SDK here, traces only, exported within a fraction of a second. */
  envFor(serviceName: string): Record<string, string> {
    return {
      OTEL_SERVICE_NAME: serviceName,
      OTEL_EXPORTER_OTLP_ENDPOINT: this.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_METRICS_EXPORTER: "none",
      OTEL_LOGS_EXPORTER: "none",
      OTEL_BSP_SCHEDULE_DELAY: "100",
    };
  }

  async stop(): Promise<void> {
    await stopServer(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    if (req.url === "/v1/traces") this.keep(JSON.parse(body.toString("utf8")) as OtlpTraces);
    res.writeHead(200, { "content-type": "application/json" });
    res.end("{}");
  }

  private keep(body: OtlpTraces): void {
    for (const resource of body.resourceSpans ?? []) {
      const service = String(plain(resource.resource?.attributes?.find((a) => a.key === "service.name")?.value ?? {}));
      for (const scope of resource.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          this.spans.push({
            service,
            name: span.name,
            kind: span.kind,
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId ?? "",
            attributes: Object.fromEntries((span.attributes ?? []).map((a) => [a.key, plain(a.value)])),
            links: (span.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
          });
        }
      }
    }
  }
}

function plain(value: OtlpValue): string | number | boolean {
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.boolValue !== undefined) return value.boolValue;
  return "";
}
