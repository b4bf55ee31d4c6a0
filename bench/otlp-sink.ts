import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Where `--tracing` exports: an OTLP/HTTP endpoint on loopback that reads and
 * discards every request (a collector's work is not the service's), counting
 * requests and bytes so the report can say the spans did arrive.
 */
export class OtlpSink {
  requests = 0;
  bytes = 0;
  private constructor(
    private readonly server: http.Server,
    private readonly samplingRatio: number,
  ) {}

  static async start(samplingRatio: number): Promise<OtlpSink> {
    if (!(samplingRatio > 0 && samplingRatio <= 1)) throw new Error(`--tracing=${samplingRatio}: a sampling ratio in (0, 1]`);
    const server = http.createServer();
    const sink = new OtlpSink(server, samplingRatio);
    server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      req.on("data", (chunk: Buffer) => (sink.bytes += chunk.length));
      req.on("end", () => {
        sink.requests++;
        res.writeHead(200, { "content-type": "application/x-protobuf" });
        res.end();
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return sink;
  }

  /** The spans of `serve` and `worker` exported here (every trace, or the ratio's share), in batches every 200 ms. */
  env(): Record<string, string> {
    return {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`,
      OTEL_TRACES_EXPORTER: "otlp",
      ...(this.samplingRatio === 1
        ? { OTEL_TRACES_SAMPLER: "always_on" }
        : { OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: String(this.samplingRatio) }),
      OTEL_METRICS_EXPORTER: "none",
      OTEL_LOGS_EXPORTER: "none",
      OTEL_BSP_SCHEDULE_DELAY: "200",
      OTEL_BSP_MAX_QUEUE_SIZE: "16384",
    };
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
