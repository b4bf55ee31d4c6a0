import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { freePort, waitFor } from "./free-port.js";

export interface RunningPostgres {
  /** Superuser URL of the "postgres" database. */
  readonly adminUrl: string;
  /** Stops the server for good and deletes its data. */
  stop(): Promise<void>;
  /** Stops the server (fast shutdown), keeping its data; `start` brings it back on the same port. */
  halt(): Promise<void>;
  start(): Promise<void>;
  /** Freezes the server and every session (SIGSTOP): connections stay open and nothing answers. */
  freeze(): void;
  thaw(): void;
}

/** Debian keeps the server binaries out of PATH, under /usr/lib/postgresql/<major>/bin. */
function binDir(): string {
  const root = "/usr/lib/postgresql";
  const majors = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const major of majors) {
    const dir = path.join(root, major, "bin");
    if (existsSync(path.join(dir, "initdb"))) return dir;
  }
  throw new Error("PostgreSQL server binaries not found under /usr/lib/postgresql: install the postgresql package (.ci/run does)");
}

/**
 * Starts a throwaway PostgreSQL server: initdb into a temp dir, listen on a free
 * loopback port, durability off (tests do not need to survive power loss).
 * `settings` are more of the server's settings (`name=value`).
 * PostgreSQL refuses to run as root, so as root it runs as the postgres user.
 */
export async function startPostgres(settings: readonly string[] = []): Promise<RunningPostgres> {
  const bin = binDir();
  const dataDir = mkdtempSync(path.join(tmpdir(), "otp-pg-"));
  const asRoot = process.getuid?.() === 0;
  const runAs = (command: string, args: string[]): [string, string[]] =>
    asRoot ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    chownSync(dataDir, uid, gid);
  }
  const [initCmd, initArgs] = runAs(path.join(bin, "initdb"), ["-D", dataDir, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]);
  execFileSync(initCmd, initArgs, { stdio: "pipe" });
  const port = await freePort();
  const [cmd, args] = runAs(path.join(bin, "postgres"), [
    "-D", dataDir, "-p", String(port), "-k", dataDir, "-c", "listen_addresses=127.0.0.1",
    "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
    ...settings.flatMap((setting) => ["-c", setting]),
  ]);
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  const launch = async () => {
    const started = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    child = started;
    let stderr = "";
    started.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    try {
      await waitFor("postgres to accept connections", async () => {
        if (started.exitCode !== null) throw new Error(`postgres exited: ${stderr}`);
        const client = new pg.Client({ connectionString: adminUrl });
        client.on("error", () => undefined);
        await client.connect();
        await client.end();
        return true;
      });
    } catch (error) {
      started.kill("SIGKILL");
      throw error;
    }
  };
  // Signal the postmaster itself: runuser does not forward signals to it.
  const postmasterPid = () => Number(readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  /** The postmaster and its backends: SIGSTOP on the postmaster alone would leave open sessions answering. */
  const serverPids = () => {
    const pid = postmasterPid();
    const children = execFileSync("ps", ["-o", "pid=", "--ppid", String(pid)]).toString().split("\n").map(Number).filter((n) => n > 0);
    return [pid, ...children];
  };
  const shutDown = async (signal: NodeJS.Signals) => {
    const running = child;
    if (running === undefined || running.exitCode !== null) return;
    const exited = new Promise((r) => running.once("exit", r));
    process.kill(postmasterPid(), signal);
    const stopped = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 10_000))]);
    if (!stopped) {
      process.kill(postmasterPid(), "SIGKILL");
      running.kill("SIGKILL");
    }
  };
  await launch();
  return {
    adminUrl,
    stop: async () => {
      await shutDown("SIGQUIT"); // immediate shutdown: the data is thrown away anyway
      rmSync(dataDir, { recursive: true, force: true });
    },
    halt: () => shutDown("SIGINT"), // fast shutdown: sessions are ended (57P01), as on a restart or failover
    start: launch,
    freeze: () => {
      for (const pid of serverPids()) process.kill(pid, "SIGSTOP");
    },
    thaw: () => {
      for (const pid of serverPids()) process.kill(pid, "SIGCONT");
      // As root the server runs under runuser, which stops itself when its child stops: wake it too.
      child?.kill("SIGCONT");
    },
  };
}

/** A fresh, empty database on the shared test server, for one test file. */
export async function createTestDatabase(adminUrl: string): Promise<string> {
  const name = `t_${Math.random().toString(36).slice(2, 12)}`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
