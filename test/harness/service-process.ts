import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { sha256 } from "./app-fixture.js";
import { waitFor } from "./free-port.js";
import { TEST_KEYS } from "./service-fixture.js";

const ROOT = path.resolve(import.meta.dirname, "../..");

export interface ServiceProcess {
  readonly pid: number;
  readonly httpPort: number;
  readonly grpcPort: number;
  /** The worker's health port (grpc.health.v1, /metrics); 0 for other roles. */
  readonly healthPort: number;
  /** Everything the process wrote so far (stdout and stderr). */
  output(): string;
  /** Null while the process runs. */
  exitCode(): number | null;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts the real binary (`bin/otp-orchestrator.js <role>`) as a child process,
 * on ports 0, and waits for its `ready` log line ("listening" carries the ports).
 */
export async function startServiceProcess(
  args: string[],
  env: Record<string, string> = {},
  ready = "listening",
  fixedPorts: { http?: number; grpc?: number } = {},
): Promise<ServiceProcess> {
  const portArgs = ["--http-port", String(fixedPorts.http ?? 0), "--grpc-port", String(fixedPorts.grpc ?? 0), "--health-port", "0"];
  const child: ChildProcess = spawn(process.execPath, [path.join(ROOT, "bin/otp-orchestrator.js"), ...args, ...portArgs], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  let ports: { httpPort: number; grpcPort: number; healthPort: number } | undefined;
  try {
    await waitFor(
      "the service to listen",
      async () => {
        if (child.exitCode !== null) return true; // no point waiting longer: reported below
        const line = output.split("\n").find((l) => l.includes(`"message":"${ready}"`));
        if (line) ports = { httpPort: 0, grpcPort: 0, healthPort: 0, ...(JSON.parse(line) as object) };
        return ports !== undefined;
      },
      60_000,
    );
    if (ports === undefined) throw new Error(`exited with ${child.exitCode}: ${output}`);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return {
    pid: child.pid!,
    httpPort: ports!.httpPort,
    grpcPort: ports!.grpcPort,
    healthPort: ports!.healthPort,
    output: () => output,
    exitCode: () => child.exitCode,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      child.kill(signal);
      return exited;
    },
  };
}

export interface ProcessOptions {
  readonly databaseUrl: string;
  readonly natsUrl?: string;
  /** A routing file (OTP_CONFIG); the sandbox catalogue when unset. */
  readonly configFile?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** A fixed HTTP port (when providers must be told our webhook URL up front); free otherwise. */
  readonly httpPort?: number;
}

function commonEnv(options: ProcessOptions): Record<string, string> {
  return {
    OTP_DATABASE_URL: options.databaseUrl,
    ...(options.natsUrl ? { OTP_NATS_URL: options.natsUrl } : {}),
    ...(options.configFile ? { OTP_CONFIG: options.configFile } : {}),
    OTP_CODE_HASH_KEY: TEST_KEYS.hashKey.toString("base64"),
    OTP_CODE_SEAL_KEY: TEST_KEYS.sealKey.toString("base64"),
    ...options.env,
  };
}

/** `serve` as tests run it: migrations on start, the dev inbox on, one caller with `token` (or the config file's callers). */
export async function startServeProcess(options: ProcessOptions & { token?: string }): Promise<ServiceProcess> {
  return startServiceProcess(
    ["serve"],
    {
      ...(options.token ? { OTP_CALLERS: `checkout:${sha256(options.token)}` } : {}),
      OTP_MIGRATE_ON_START: "true",
      OTP_DEV_INBOX: "true",
      OTP_HOST: "127.0.0.1",
      ...commonEnv(options),
    },
    "listening",
    options.httpPort !== undefined ? { http: options.httpPort } : {},
  );
}

/** A `worker` process on JetStream; ready once it consumes. */
export async function startWorkerProcess(options: ProcessOptions & { natsUrl: string; channels?: string }): Promise<ServiceProcess> {
  return startServiceProcess(["worker", "--channels", options.channels ?? "sms,email,voice,push"], { OTP_HOST: "127.0.0.1", ...commonEnv(options) }, "consuming");
}

/** The dev inbox of a running process, newest first. */
export async function inboxMessages(httpPort: number): Promise<Array<{ body: string; verification_id: string; channel: string }>> {
  const response = await fetch(`http://127.0.0.1:${httpPort}/dev/inbox.json`);
  return ((await response.json()) as { messages: Array<{ body: string; verification_id: string; channel: string }> }).messages;
}
