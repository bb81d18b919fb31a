/**
 * The `200` body of `GET /api/v1/node/config`: role, k3s version, where to get k3s, config.yaml.
 * k3s comes from edgejoin's `/artifacts/` when the admin put it there (air-gapped sites),
 * otherwise from the public install script. Pure: which files exist and their URLs come from
 * the caller.
 */
import type { ClusterRow, MachineRow } from "../../db/schema.js";
import type { MachineRole } from "../lifecycle/machine.js";
import { expandHostnamePattern } from "../lifecycle/node-name.js";
import { stringify } from "yaml";
import { airgapImagePaths, k3sArch } from "../clusters/artifacts.js";
import { k3sCommandFor, renderK3sConfig, type K3sConfigForm } from "./k3s-config.js";

/** The public install script, used when the artifacts folder has none. */
export const publicInstallScriptUrl = "https://get.k3s.io";

/** Artifact paths under the artifacts folder, relative, `/`-separated. */
export const k3sArtifacts = {
  installScript: "k3s/install.sh",
  /** k3s release asset names by iPXE `${buildarch}` / enroll `arch`. */
  binary: (version: string, arch: string | null) => `k3s/${version}/${k3sBinaryName(arch)}`,
};

/** k3s's release asset for an architecture: `k3s` (amd64), `k3s-arm64`, `k3s-armhf`. */
export function k3sBinaryName(arch: string | null): string {
  const a = (arch ?? "").toLowerCase();
  if (a === "arm64" || a === "aarch64") return "k3s-arm64";
  if (a === "arm32" || a === "armhf" || a === "armv7l" || a === "arm") return "k3s-armhf";
  return "k3s";
}

/** The body's `install` member. */
export type InstallSpec = {
  script_url: string;
  binary_url: string | null;
  env: { INSTALL_K3S_VERSION: string; INSTALL_K3S_EXEC: "server" | "agent"; INSTALL_K3S_SKIP_DOWNLOAD?: "true" };
  /** The k3s air-gap images tarball for this machine's arch; the agent puts it in /var/lib/rancher/k3s/agent/images/ before k3s starts. */
  airgap_images_url: string | null;
};

/** The `200` body. */
export type NodeConfigBody = {
  role: MachineRole;
  k3s_version: string;
  install: InstallSpec;
  config_yaml: string;
  /** The cluster's k3s registries.yaml (registry mirrors), written by the agent to /etc/rancher/k3s/registries.yaml; null = none. */
  registries_yaml: string | null;
  /** `host:port` of edgejoin's syslog receiver, where the agent also sends its log lines; null = off. */
  syslog: string | null;
};

/** What the body needs to know about the artifacts folder. */
export type ArtifactLookup = { has(relative: string): boolean; url(relative: string): string };

/** Where a joiner connects when the cluster has no registration address: a ready server other than itself, the init server first. */
export function joinHostFor(cluster: Pick<ClusterRow, "registrationAddress">, servers: MachineRow[], selfId: number): string | null {
  if (cluster.registrationAddress) return cluster.registrationAddress;
  const others = servers.filter((s) => s.id !== selfId && s.lastIp);
  const ready = others.filter((s) => s.state === "joined");
  const pick = ready.find((s) => s.role === "init") ?? ready[0] ?? others.find((s) => s.role === "init") ?? others.find((s) => s.k3sStartedAt !== null);
  return pick?.lastIp ?? null;
}

/**
 * The config a seat renders with. A returning (re-imaged) init server joins through the others
 * as soon as any other server has run k3s, even if none is ready right now: `cluster-init` again
 * would start a second cluster beside theirs.
 */
export function formFor(role: MachineRole, selfId: number, servers: MachineRow[]): K3sConfigForm {
  if (role === "agent") return "agent";
  if (role === "server") return "server";
  return servers.some((s) => s.id !== selfId && s.k3sStartedAt !== null) ? "server" : "init";
}

/** The whole `200` body for a seat holder, from the rows read in the transaction that gave the seat. */
export function renderNodeConfig(o: {
  cluster: ClusterRow;
  machine: MachineRow & { role: MachineRole };
  servers: MachineRow[];
  artifacts: ArtifactLookup;
  /** `host:port` of the syslog receiver, when it is on. */
  syslog?: string | null;
}): NodeConfigBody {
  const { cluster, machine, servers, artifacts } = o;
  const form = formFor(machine.role, machine.id, servers);
  const configYaml = renderK3sConfig({
    form,
    nodeName: machine.hostname ?? expandHostnamePattern(cluster.hostnamePattern, machine, cluster.name),
    nodeIp: machine.lastIp,
    registrationAddress: cluster.registrationAddress,
    joinHost: form === "init" ? null : joinHostFor(cluster, servers, machine.id),
    serverToken: cluster.serverToken,
    agentToken: cluster.agentToken,
    caHash: cluster.caHash,
    labels: { ...cluster.labels, ...machine.labels },
    taints: form === "agent" ? [] : cluster.taints,
  });
  const script = k3sArtifacts.installScript;
  const binary = k3sArtifacts.binary(cluster.k3sVersion, machine.arch);
  const binaryUrl = artifacts.has(binary) ? artifacts.url(binary) : null;
  const images = airgapImagePaths(cluster.k3sVersion, k3sArch(machine.arch)).find((p) => artifacts.has(p));
  return {
    role: machine.role,
    k3s_version: cluster.k3sVersion,
    install: {
      script_url: artifacts.has(script) ? artifacts.url(script) : publicInstallScriptUrl,
      binary_url: binaryUrl,
      env: {
        INSTALL_K3S_VERSION: cluster.k3sVersion,
        INSTALL_K3S_EXEC: k3sCommandFor(form),
        // The script then installs the binary the agent placed instead of fetching one from GitHub.
        ...(binaryUrl ? { INSTALL_K3S_SKIP_DOWNLOAD: "true" as const } : {}),
      },
      airgap_images_url: images ? artifacts.url(images) : null,
    },
    config_yaml: configYaml,
    // Serialized as data: a mirror URL or password can never break out into YAML structure.
    registries_yaml: cluster.registries ? stringify(cluster.registries) : null,
    syslog: o.syslog ?? null,
  };
}
