import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ConfigMap, Service, ServiceAccount } from "kubernetes-models/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { Job } from "kubernetes-models/batch/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { parseConfigFile } from "../../src/config/config-file.js";
import { restrictedViolations, type PodSpec } from "./pod-security.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const HELM = path.join(ROOT, ".tools/helm");
const CHART = path.join(ROOT, "helm/otp-orchestrator");
const FULL = path.join(import.meta.dirname, "full-values.yaml");

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
}

function helm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  if (!existsSync(HELM)) throw new Error(`${HELM} not found (bash scripts/install-helm.sh; .ci/run does)`);
  const run = spawnSync(HELM, args, { encoding: "utf8", env: { ...process.env, HELM_CACHE_HOME: tmpdir(), HELM_CONFIG_HOME: tmpdir(), HELM_DATA_HOME: tmpdir() } });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

function render(...args: string[]): Manifest[] {
  const run = helm(["template", "rel", CHART, "--namespace", "otp", ...args]);
  if (run.status !== 0) throw new Error(`helm template ${args.join(" ")}: ${run.stderr}`);
  return parseAllDocuments(run.stdout)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

/** The Kubernetes API's own schemas (kubernetes-models), per kind; the Prometheus Operator's kinds are checked by hand below. */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
};

const byKind = (manifests: Manifest[], kind: string) => manifests.filter((m) => m.kind === kind);
const named = (manifests: Manifest[], kind: string, suffix: string) => manifests.find((m) => m.kind === kind && m.metadata.name.endsWith(suffix))!;
const podSpecs = (manifests: Manifest[]) => manifests.filter((m) => m.kind === "Deployment" || m.kind === "Job").map((m) => [m.metadata.name, m.spec.template.spec as PodSpec] as const);

describe.each([
  ["default values", [] as string[]],
  ["full values", ["-f", FULL]],
])("the Helm chart with %s", (_, args) => {
  const manifests = render(...args);

  it("passes helm lint --strict", () => {
    const lint = helm(["lint", "--strict", CHART, ...args]);
    expect(lint.stdout + lint.stderr).toContain("0 chart(s) failed");
    expect(lint.status).toBe(0);
  });

  it("renders only manifests the Kubernetes API schemas accept", () => {
    const kinds = new Set<string>();
    for (const manifest of manifests) {
      const key = `${manifest.apiVersion}/${manifest.kind}`;
      kinds.add(key);
      if (manifest.apiVersion === "monitoring.coreos.com/v1") {
        expect(["ServiceMonitor", "PodMonitor"]).toContain(manifest.kind);
        continue;
      }
      const Model = MODELS[key];
      expect(Model, `a schema for ${key}`).toBeDefined();
      expect(() => new Model!(manifest).validate(), `${key} ${manifest.metadata.name}`).not.toThrow();
    }
    expect(kinds).toContain("apps/v1/Deployment");
    expect(kinds).toContain("batch/v1/Job");
  });

  it("satisfies Pod Security 'restricted' in every pod, with a read-only root filesystem", () => {
    const specs = podSpecs(manifests);
    expect(specs.length).toBeGreaterThanOrEqual(3);
    for (const [name, spec] of specs) expect(restrictedViolations(spec), name).toEqual([]);
  });

  it("probes every long-running role with native gRPC probes on the port that serves grpc.health.v1", () => {
    const deployments = byKind(manifests, "Deployment");
    for (const deployment of deployments) {
      const [container] = deployment.spec.template.spec.containers;
      const env = Object.fromEntries(container.env.filter((e: any) => "value" in e).map((e: any) => [e.name, e.value]));
      const isServe = deployment.metadata.name.endsWith("-serve");
      const port = Number(isServe ? env.OTP_GRPC_PORT : env.OTP_HEALTH_PORT);
      expect(container.ports.map((p: any) => p.containerPort)).toContain(port);
      // Liveness (and start-up) ask for the process, readiness for the whole server (database, consumers bound).
      expect(container.startupProbe.grpc).toEqual({ port, service: "liveness" });
      expect(container.livenessProbe.grpc).toEqual({ port, service: "liveness" });
      expect(container.readinessProbe.grpc).toEqual({ port });
      expect(container.args).toEqual([isServe ? "serve" : "worker"]);
    }
    expect(deployments.filter((d) => !d.metadata.name.endsWith("-serve")).length).toBeGreaterThan(0);
  });

  it("takes every credential from an existing Secret: secretKeyRef env, mounted *_file paths, nothing inline", () => {
    for (const [name, spec] of podSpecs(manifests)) {
      for (const container of spec.containers) {
        for (const variable of (container.env ?? []) as Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: unknown } }>) {
          if (/KEY|SECRET|TOKEN|PASSWORD|DATABASE_URL/.test(variable.name)) {
            expect(variable.valueFrom?.secretKeyRef, `${name} ${variable.name}`).toBeDefined();
          }
          if (variable.value !== undefined) expect(variable.value, `${name} ${variable.name}`).not.toMatch(/\/\/[^/]*@/);
        }
      }
    }
    const file = parse(named(manifests, "ConfigMap", "-config").data!["otp.yaml"]!) ?? {};
    const keys: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node !== null && typeof node === "object") {
        for (const [key, value] of Object.entries(node)) {
          keys.push(key);
          walk(value);
        }
      }
    };
    walk(file);
    expect(keys.filter((k) => ["api_key", "webhook_secret", "password", "token_sha256", "token"].includes(k))).toEqual([]);
  });

  it("migrates in a pre-install and pre-upgrade hook, before any Deployment exists or rolls", () => {
    const job = named(manifests, "Job", "-migrate");
    expect(job.metadata.annotations?.["helm.sh/hook"]?.split(",").sort()).toEqual(["pre-install", "pre-upgrade"]);
    expect(job.spec.template.spec.containers[0].args).toEqual(["migrate"]);
    // The Deployments are ordinary resources: Helm creates them only after the hook succeeded.
    for (const deployment of byKind(manifests, "Deployment")) expect(deployment.metadata.annotations?.["helm.sh/hook"]).toBeUndefined();
  });
});

describe("the Helm chart's values", () => {
  const checksums = (...args: string[]) => byKind(render(...args), "Deployment").map((d) => d.spec.template.metadata.annotations["checksum/config"]);

  it("rolls every pod when the configuration file changes, and only then", () => {
    const before = checksums();
    expect(new Set(before).size).toBe(1);
    expect(checksums()).toEqual(before);
    expect(checksums("--set", "serve.replicas=5")).toEqual(before);
    const changed = checksums("--set", "config.callers.billing.token_sha256_file=/etc/otp/secrets/billing");
    expect(changed.every((c, i) => c !== before[i])).toBe(true);
  });

  it("refuses, at install, inline credentials and wrong values (values.schema.json)", () => {
    for (const set of [
      "config.providers.bridgex.api_key=plaintext",
      "config.providers.twilio.auth_token=plaintext",
      "config.providers.whatsapp.access_token=plaintext",
      "config.providers.whatsapp.app_secret=plaintext",
      "config.callers.checkout.token_sha256=abc",
      "nats.url=nats://user:password@nats:4222",
      "extraEnv.OTP_CODE_SEAL_KEY=abc",
      "serve.replicas=0",
      "workers[0].channels[0]=fax",
      "logLevel=loud",
      "terminationGracePeriodSeconds=5",
    ]) {
      const run = helm(["template", "rel", CHART, "--set", set]);
      expect(run.status, set).not.toBe(0);
      expect(run.stderr, set).toContain("values don't meet the specifications of the schema");
    }
  });

  it("renders a configuration file the service accepts, its secrets read from the mounted files", () => {
    const manifests = render("-f", FULL);
    const secrets = mkdtempSync(path.join(tmpdir(), "otp-chart-secrets-"));
    for (const name of ["bridgex-api-key", "bridgex-webhook-secret", "smtp-password", "checkout-token-sha256"]) writeFileSync(path.join(secrets, name), name === "checkout-token-sha256" ? "a".repeat(64) : `${name}-value`);
    const text = named(manifests, "ConfigMap", "-config").data!["otp.yaml"]!.replaceAll("/etc/otp/secrets/", `${secrets}/`);
    const config = parseConfigFile(parse(text), secrets);
    expect(config.routing.routes.map((r) => r.id)).toEqual(["sms-nl-otp", "email-otp"]);
    expect(config.callers?.map((c) => c.id)).toEqual(["checkout"]);
    // The secret files are mounted where the file names them.
    const serve = named(manifests, "Deployment", "-serve").spec.template.spec;
    expect(serve.containers[0].volumeMounts).toContainEqual({ name: "secret-files", mountPath: "/etc/otp/secrets", readOnly: true });
    expect(serve.volumes).toContainEqual({ name: "secret-files", secret: { secretName: "otp-provider-credentials", defaultMode: 0o440 /* 288 */ } });
  });

  it("makes one Deployment, budget and (optionally) autoscaler per worker group, scaling on its backlog", () => {
    const manifests = render("-f", FULL);
    const groups = byKind(manifests, "Deployment").filter((d) => d.metadata.name.includes("-worker-"));
    expect(groups.map((d) => [d.metadata.name, d.spec.template.spec.containers[0].env.find((e: any) => e.name === "OTP_WORKER_CHANNELS").value])).toEqual([
      ["rel-otp-orchestrator-worker-sms", "sms"],
      ["rel-otp-orchestrator-worker-other", "email,voice,push"],
    ]);
    // Autoscaled: the HPA owns the replica count.
    expect(groups[0]!.spec.replicas).toBeUndefined();
    expect(groups[1]!.spec.replicas).toBe(1);
    const hpa = named(manifests, "HorizontalPodAutoscaler", "-worker-sms");
    expect(hpa.spec.metrics.map((m: any) => m.type)).toEqual(["Resource", "External"]);
    expect(hpa.spec.metrics[1].external.metric).toEqual({ name: "otp_dispatch_pending", selector: { matchLabels: { channel: "sms" } } });
    expect(byKind(manifests, "PodDisruptionBudget").map((p) => p.metadata.name)).toEqual([
      "rel-otp-orchestrator-serve",
      "rel-otp-orchestrator-worker-sms",
      "rel-otp-orchestrator-worker-other",
    ]);
    const service = byKind(manifests, "Service")[0]!;
    expect(service.spec.ports.find((p: any) => p.name === "grpc").appProtocol).toBe("grpc");
  });

  it("has a Pod Security check that finds what 'restricted' forbids", () => {
    const [, spec] = podSpecs(render())[0]!;
    const container = spec.containers[0]!;
    const broken: PodSpec = {
      ...spec,
      hostNetwork: true,
      securityContext: { ...spec.securityContext, runAsNonRoot: undefined, seccompProfile: undefined },
      containers: [{ ...container, securityContext: { ...container.securityContext, allowPrivilegeEscalation: true, runAsNonRoot: undefined, seccompProfile: undefined, capabilities: { add: ["NET_ADMIN"] }, readOnlyRootFilesystem: false } }],
      volumes: [...(spec.volumes ?? []), { name: "host", hostPath: { path: "/var/run" } }],
    };
    expect(restrictedViolations(broken).sort()).toEqual(
      [
        "hostNetwork",
        "volume host: hostPath",
        "serve: allowPrivilegeEscalation must be false",
        "serve: capabilities must drop ALL",
        "serve: capability NET_ADMIN added",
        "serve: runAsNonRoot must be true",
        "serve: seccompProfile must be RuntimeDefault or Localhost",
        "serve: readOnlyRootFilesystem must be true",
      ].sort(),
    );
  });

  it("documents every value it reads (values.yaml and values.schema.json agree)", () => {
    const values = parse(readFileSync(path.join(CHART, "values.yaml"), "utf8")) as Record<string, unknown>;
    const schema = JSON.parse(readFileSync(path.join(CHART, "values.schema.json"), "utf8")) as { properties: Record<string, unknown> };
    expect(Object.keys(values).filter((k) => !(k in schema.properties))).toEqual([]);
    expect(Object.keys(schema.properties).filter((k) => !(k in values) && k !== "global")).toEqual([]);
  });
});
