import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, waitFor } from "./free-port.js";

export interface RunningNats {
  readonly url: string;
  stop(): Promise<void>;
  /** Stops the server process but keeps its store, so `restart` brings back the same streams. */
  kill(): Promise<void>;
  restart(): Promise<void>;
}

/** Starts a throwaway nats-server with JetStream on a free loopback port and a temp store dir. */
export async function startNats(): Promise<RunningNats> {
  const storeDir = mkdtempSync(path.join(tmpdir(), "otp-nats-"));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let stderr = "";
  const launch = async () => {
    child = spawn("nats-server", ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir], { stdio: ["ignore", "ignore", "pipe"] });
    child.on("error", (e) => (stderr += String(e)));
    child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    await waitFor("nats-server to accept connections", async () => {
      if (child?.exitCode !== null || stderr.includes("ENOENT")) throw new Error(`nats-server did not start: ${stderr} (install the nats-server package; .ci/run does)`);
      return new Promise<boolean>((resolve) => {
        const socket = net.connect(port, "127.0.0.1", () => {
          socket.destroy();
          resolve(true);
        });
        socket.once("error", () => resolve(false));
      });
    });
  };
  const kill = async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    }
  };
  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    kill,
    restart: launch,
    stop: async () => {
      await kill();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}
