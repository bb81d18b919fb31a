/**
 * The `200` body of `GET /api/v1/node/config`: role, k3s version, where to get k3s, config.yaml.
 * k3s comes from edgejoin's `/artifacts/` when the admin put it there (air-gapped sites),
 * otherwise from the public install script.
 */
import type { SeatRole } from "./seats.js";
import { k3sCommandFor, type K3sConfigForm } from "./k3s-config.js";

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

/** The body's `install` member, as contracts.md fixes it. */
export type InstallSpec = {
  script_url: string;
  binary_url: string | null;
  env: { INSTALL_K3S_VERSION: string; INSTALL_K3S_EXEC: "server" | "agent"; INSTALL_K3S_SKIP_DOWNLOAD?: "true" };
};

/** The `200` body. */
export type NodeConfigBody = {
  role: SeatRole;
  k3s_version: string;
  install: InstallSpec;
  config_yaml: string;
};

function artifactUrl(publicUrl: string, relative: string): string {
  return `${publicUrl}/artifacts/${relative.split("/").map(encodeURIComponent).join("/")}`;
}

/** Build the body; `present` says which artifact paths exist in the artifacts folder. */
export function nodeConfigBody(opts: {
  role: SeatRole;
  form: K3sConfigForm;
  k3sVersion: string;
  arch: string | null;
  publicUrl: string;
  present: (relativePath: string) => boolean;
  configYaml: string;
}): NodeConfigBody {
  const script = k3sArtifacts.installScript;
  const binary = k3sArtifacts.binary(opts.k3sVersion, opts.arch);
  const binaryUrl = opts.present(binary) ? artifactUrl(opts.publicUrl, binary) : null;
  return {
    role: opts.role,
    k3s_version: opts.k3sVersion,
    install: {
      script_url: opts.present(script) ? artifactUrl(opts.publicUrl, script) : publicInstallScriptUrl,
      binary_url: binaryUrl,
      env: {
        INSTALL_K3S_VERSION: opts.k3sVersion,
        INSTALL_K3S_EXEC: k3sCommandFor(opts.form),
        // The script then installs the binary the agent placed instead of fetching one from GitHub.
        ...(binaryUrl ? { INSTALL_K3S_SKIP_DOWNLOAD: "true" as const } : {}),
      },
    },
    config_yaml: opts.configYaml,
  };
}
