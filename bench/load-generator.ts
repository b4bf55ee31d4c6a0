import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import type { LoadResult } from "./load.js";
import type { LoadReply, LoadRequest, Measure } from "./load-protocol.js";

/**
 * The bench's handle on a load generator process (bench/load-process.ts):
 * clients of the `serve` on `grpcPort`, over `connections` HTTP/2 connections,
 * that run one measure at a time when asked. Forked with this process's
 * loader (tsx), so it runs the same TypeScript.
 */
export class LoadGenerator {
  private nextId = 1;
  private readonly waiting = new Map<number, (reply: LoadReply) => void>();

  private constructor(private readonly child: ChildProcess) {
    child.on("message", (reply: LoadReply) => {
      this.waiting.get(reply.id)?.(reply);
      this.waiting.delete(reply.id);
    });
    child.on("exit", (code) => {
      for (const resolve of this.waiting.values()) resolve({ id: -1, error: `load generator exited with ${code}`, sent: 0 });
      this.waiting.clear();
    });
  }

  static async start(grpcPort: number, connections: number, phonePrefix?: string): Promise<LoadGenerator> {
    const child = fork(path.join(import.meta.dirname, "load-process.ts"), [], {
      env: { ...process.env, LOAD_GRPC_PORT: String(grpcPort), LOAD_CONNECTIONS: String(connections), ...(phonePrefix ? { LOAD_PHONE_PREFIX: phonePrefix } : {}) },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const generator = new LoadGenerator(child);
    await generator.ask(0); // the process says it is ready with an unasked reply 0 (load-process.ts)
    return generator;
  }

  /** Runs `measure` in the load generator's process. */
  async run(measure: Measure): Promise<LoadResult> {
    return (await this.ask(this.nextId++, measure)).result!;
  }

  /** How many SendOtp calls of this generator have succeeded. */
  async sent(): Promise<number> {
    return (await this.ask(this.nextId++)).sent;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.disconnect();
    await exited;
  }

  private ask(id: number, measure?: Measure): Promise<LoadReply> {
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (reply) => (reply.error === undefined ? resolve(reply) : reject(new Error(reply.error))));
      if (id !== 0) this.child.send({ id, measure } satisfies LoadRequest);
    });
  }
}
