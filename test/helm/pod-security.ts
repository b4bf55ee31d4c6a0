/**
 * The Kubernetes Pod Security Standards' "restricted" profile (baseline included), as the admission controller
 * checks it, plus this chart's own rule: a read-only root filesystem. Returns what a pod spec breaks, in words.
 * https://kubernetes.io/docs/concepts/security/pod-security-standards/
 */
export interface PodSpec {
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  securityContext?: SecurityContext & { sysctls?: unknown[] };
  containers: Container[];
  initContainers?: Container[];
  volumes?: Array<Record<string, unknown> & { name: string }>;
  [key: string]: unknown;
}

interface SecurityContext {
  runAsNonRoot?: boolean | undefined;
  runAsUser?: number;
  seccompProfile?: { type: string } | undefined;
  [key: string]: unknown;
}

interface Container {
  name: string;
  ports?: Array<{ hostPort?: number }>;
  securityContext?: SecurityContext & {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
    procMount?: string;
  };
  [key: string]: unknown;
}

const ALLOWED_VOLUMES = ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];

export function restrictedViolations(pod: PodSpec): string[] {
  const found: string[] = [];
  for (const host of ["hostNetwork", "hostPID", "hostIPC"] as const) if (pod[host]) found.push(host);
  for (const volume of pod.volumes ?? []) {
    const type = Object.keys(volume).find((k) => k !== "name");
    if (type === undefined || !ALLOWED_VOLUMES.includes(type)) found.push(`volume ${volume.name}: ${type}`);
  }
  if ((pod.securityContext?.sysctls ?? []).length > 0) found.push("sysctls");
  if (pod.securityContext?.runAsUser === 0) found.push("pod runAsUser 0");
  for (const container of [...pod.containers, ...(pod.initContainers ?? [])]) {
    const own = container.securityContext ?? {};
    const at = (rule: string) => found.push(`${container.name}: ${rule}`);
    if (own.privileged) at("privileged");
    if (own.allowPrivilegeEscalation !== false) at("allowPrivilegeEscalation must be false");
    if ((own.runAsNonRoot ?? pod.securityContext?.runAsNonRoot) !== true) at("runAsNonRoot must be true");
    if (own.runAsUser === 0) at("runAsUser 0");
    const seccomp = (own.seccompProfile ?? pod.securityContext?.seccompProfile)?.type;
    if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") at("seccompProfile must be RuntimeDefault or Localhost");
    if (!(own.capabilities?.drop ?? []).includes("ALL")) at("capabilities must drop ALL");
    for (const added of own.capabilities?.add ?? []) if (added !== "NET_BIND_SERVICE") at(`capability ${added} added`);
    if (own.procMount !== undefined && own.procMount !== "Default") at("procMount");
    if ((container.ports ?? []).some((p) => p.hostPort)) at("hostPort");
    if (own.readOnlyRootFilesystem !== true) at("readOnlyRootFilesystem must be true");
  }
  return found;
}
