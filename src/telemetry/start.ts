/**
 * Loaded by the `otp-orchestrator` binary before the application, so the
 * OpenTelemetry instrumentations are in place when pg, grpc-js and http load.
 */
import { startTelemetry } from "./sdk.js";

await startTelemetry(process.env);
