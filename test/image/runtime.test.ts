import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, inject, it } from "vitest";
import { sha256 } from "../harness/app-fixture.js";
import { freePort, waitFor } from "../harness/free-port.js";
import { createTestDatabase } from "../harness/postgres.js";
import { TEST_KEYS } from "../harness/service-fixture.js";
import { bearerMetadata, stockGrpcClients, unary } from "../harness/stock-grpc-client.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const UID = 10001;
const TOKEN = "image-caller-token";

/**
 * The image's assumptions, tested on the built `dist/` run the way the Dockerfile runs it
 * (`node bin/otp-orchestrator.js <role>`, uid 10001, no HOME): in a mount namespace whose whole filesystem is
 * read-only (/tmp included: the chart mounts one, and nothing is written there either), and in a PID namespace
 * where node is PID 1, which the kernel gives no default SIGTERM action: the service must handle it itself.
 * Needs root for the namespaces (CI runs as root).
 */
describe.skipIf(process.getuid?.() !== 0)("the image's runtime: read-only filesystem, non-root uid, node as PID 1", () => {
  const children: ChildProcess[] = [];
  afterAll(() => children.forEach((c) => c.kill("SIGKILL")));

  /** Runs a role as the image would; resolves once `ready` is logged. */
  async function runAsImage(role: string, env: Record<string, string>, ready: string) {
    const script = [
      "mount --make-rprivate /",
      // The app at /mnt/app, as the image has it in a directory of its own: the checkout's parents (a 0700
      // mktemp directory, say) need not be open to uid 10001.
      "mount -t tmpfs -o mode=0755 none /mnt",
      "mkdir /mnt/app",
      `mount --bind '${ROOT}' /mnt/app`,
      "mount -o remount,bind,ro /mnt/app",
      "mount -o remount,ro /mnt",
      "mount -o remount,bind,ro /",
      // /tmp (and /dev/shm) may be mounts of their own: read-only too.
      "for m in /tmp /dev/shm; do mountpoint -q $m && mount -o remount,bind,ro $m; done",
      "cd /mnt/app",
      `exec setpriv --reuid=${UID} --regid=${UID} --clear-groups --inh-caps=-all --no-new-privs env -i PATH=/usr/bin:/bin ${Object.entries(env)
        .map(([k, v]) => `${k}='${v}'`)
        .join(" ")} ${process.execPath} bin/otp-orchestrator.js ${role}`,
    ].join(" && ");
    const child = spawn("unshare", ["--mount", "--pid", "--fork", "--mount-proc", "sh", "-c", script], { stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let output = "";
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    await waitFor(`${role} to say "${ready}"`, async () => output.includes(`"message":"${ready}"`) || child.exitCode !== null, 30_000);
    if (!output.includes(`"message":"${ready}"`)) throw new Error(`${role} exited with ${child.exitCode}: ${output}`);
    return { output: () => output, exited, node: () => nodeOf(child.pid!) };
  }

  /** node, the child of unshare: its pid here, and its pid and uid in its namespace. */
  function nodeOf(unsharePid: number) {
    const pid = Number(readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, "utf8").trim().split(" ")[0]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return {
      nsPid: Number(/^NSpid:\s+\d+\s+(\d+)/m.exec(status)![1]),
      uid: Number(/^Uid:\s+(\d+)/m.exec(status)![1]),
      // unshare does not pass signals on: the kubelet's SIGTERM goes to the container's PID 1, node itself.
      terminate: () => process.kill(pid, "SIGTERM"),
    };
  }

  it("migrates, serves, and stops on SIGTERM with exit 0, writing nothing", async () => {
    const databaseUrl = await createTestDatabase(inject("pgAdminUrl"));
    const migrate = await runAsImage("migrate", { OTP_DATABASE_URL: databaseUrl }, "migrations applied");
    expect(await migrate.exited).toBe(0);

    const [grpcPort, httpPort] = [await freePort(), await freePort()];
    const serve = await runAsImage(
      "serve",
      {
        OTP_DATABASE_URL: databaseUrl,
        OTP_CODE_HASH_KEY: TEST_KEYS.hashKey.toString("base64"),
        OTP_CODE_SEAL_KEY: TEST_KEYS.sealKey.toString("base64"),
        OTP_CALLERS: `checkout:${sha256(TOKEN)}`,
        OTP_HOST: "127.0.0.1",
        OTP_GRPC_PORT: String(grpcPort),
        OTP_HTTP_PORT: String(httpPort),
      },
      "listening",
    );
    const node = serve.node();
    expect([node.nsPid, node.uid]).toEqual([1, UID]);
    const clients = stockGrpcClients(grpcPort);
    try {
      const sent = await unary<{ verification_id: string }>(clients.otp, "SendOtp", { destination: { phone: "+31612345698" } }, bearerMetadata(TOKEN));
      expect(sent.verification_id).toMatch(/^vrf_/);
      expect((await fetch(`http://127.0.0.1:${httpPort}/dashboard`)).status).toBe(200);
    } finally {
      clients.close();
    }
    node.terminate();
    expect(await serve.exited).toBe(0);
    expect(serve.output()).toContain('"message":"stopped"');
    expect(serve.output()).not.toMatch(/EROFS|EACCES|read-only file system/i);
  }, 60_000);
});
