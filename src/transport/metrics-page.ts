import type { IncomingMessage, ServerResponse } from "node:http";
import { serveMetrics } from "../telemetry/sdk.js";
import type { PageHandler } from "./http-server.js";

/** `GET /metrics` (Prometheus text) on an HTTP port: serve's, and the worker's health port. No token: restrict it by network policy. */
export const metricsPage: PageHandler = (request, response) => {
  if (request.method !== "GET" || request.url?.split("?")[0] !== "/metrics") return false;
  serveMetrics(request as IncomingMessage, response as ServerResponse);
  return true;
};
