/**
 * Preflight for the integration and lab tiers: are the Debian packages their tests drive
 * installed? The one list of them is here; `npm test`, `npm run test:integration` and
 * `npm run test:lab` run this first (and so does CI, through `npm test`).
 *
 * As root, missing packages are installed non-interactively, with no service started on this
 * host. Otherwise it stops at once with one line: the apt-get command to run.
 *
 *   tsx test/preflight/debian-packages.ts integration lab
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const tierPackages = {
  /** curl and atftp (TFTP clients), cloud-init and python3 (schema check, PyYAML), systemd (systemd-analyze), ipxe (the binaries TFTP serves), xorriso (a live-server ISO for `artifacts fetch`). */
  integration: ["curl", "atftp", "cloud-init", "python3", "systemd", "ipxe", "chromium", "xorriso"],
  /** QEMU with OVMF and SeaBIOS, the DHCP servers the README configures, namespaces and captures, the guest image build. */
  lab: [
    "qemu-system-x86",
    "qemu-utils",
    "ovmf",
    "seabios",
    "ipxe-qemu",
    "ipxe",
    "dnsmasq-base",
    "iproute2",
    "tcpdump",
    "isc-dhcp-server",
    "kea-dhcp4-server",
    "debootstrap",
    "e2fsprogs",
    "ca-certificates",
    // The machine lab's stand-in installer runs on a static busybox (test/lab/installer-standin.ts).
    "busybox-static",
  ],
} as const;

export type PackageTier = keyof typeof tierPackages;

export const isPackageTier = (name: string): name is PackageTier => Object.hasOwn(tierPackages, name);

/** The packages these tiers need, each once, in list order. */
export function packagesFor(tiers: readonly PackageTier[]): string[] {
  return [...new Set(tiers.flatMap((t) => tierPackages[t]))];
}

/** `dpkg-query -W -f='${Status}' PKG` → installed? (undefined: dpkg knows no such package). */
export const isInstalled = (status: string | undefined): boolean => status?.startsWith("install ok installed") ?? false;

/** The packages whose dpkg status is not "install ok installed". */
export function missingPackages(packages: readonly string[], status: (pkg: string) => string | undefined): string[] {
  return packages.filter((p) => !isInstalled(status(p)));
}

export const aptInstallArgs = (missing: readonly string[]): string[] => ["install", "-y", "--no-install-recommends", ...missing];

/** The command line a person runs as root. */
export const installCommand = (missing: readonly string[]): string => ["apt-get", ...aptInstallArgs(missing)].join(" ");

/** The one line printed when packages are missing and this is not root. */
export function notRootMessage(tiers: readonly PackageTier[], missing: readonly string[]): string {
  const first = missing.includes("cloud-init") ? " (first `touch /etc/cloud/cloud-init.disabled`: cloud-init is only there for its schema check)" : "";
  return `the ${tiers.join(" and ")} tests need Debian packages that are not installed; as root, run: ${installCommand(missing)}${first}`;
}

/** What installing touches on this host; tests pass a recording fake. */
export interface Host {
  exists(path: string): boolean;
  writeFile(path: string, content: string, mode: number): void;
  mkdir(path: string): void;
  remove(path: string): void;
  /** Run a command with its output on this terminal; resolves to its exit status. */
  run(command: string, args: string[], env: Record<string, string>): number;
}

export const policyRcD = "/usr/sbin/policy-rc.d";
export const cloudInitDisabled = "/etc/cloud/cloud-init.disabled";

/**
 * Install `missing` as CI always has: cloud-init disabled on this host before it is installed
 * (it is only there for its schema check), service starts forbidden by a temporary policy-rc.d
 * (packages such as isc-dhcp-server would start their daemon; the tests run them only in
 * namespaces they create) which is removed afterwards if it was ours, then apt-get update and
 * install without recommends.
 */
export function installMissing(missing: readonly string[], host: Host): void {
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  if (missing.includes("cloud-init")) {
    host.mkdir("/etc/cloud");
    host.writeFile(cloudInitDisabled, "", 0o644);
  }
  const ownPolicy = !host.exists(policyRcD);
  if (ownPolicy) host.writeFile(policyRcD, "#!/bin/sh\nexit 101\n", 0o755);
  try {
    for (const args of [["update"], aptInstallArgs(missing)]) {
      const status = host.run("apt-get", args, env);
      if (status !== 0) throw new Error(`apt-get ${args.join(" ")} exited with ${status}`);
    }
  } finally {
    if (ownPolicy) host.remove(policyRcD);
  }
}

/** This machine: dpkg's answer for one package (undefined when dpkg knows no such package). */
export function dpkgStatus(pkg: string): string | undefined {
  const r = spawnSync("dpkg-query", ["-W", "-f=${Status}", pkg], { encoding: "utf8" });
  if (r.error) throw new Error(`cannot ask dpkg about ${pkg} (${r.error.message}): the integration and lab tests expect Debian 12`);
  return r.status === 0 ? r.stdout : undefined;
}

export const realHost: Host = {
  exists: existsSync,
  writeFile: (path, content, mode) => writeFileSync(path, content, { mode }),
  mkdir: (path) => mkdirSync(path, { recursive: true }),
  remove: (path) => rmSync(path, { force: true }),
  run: (command, args, env) => {
    const r = spawnSync(command, args, { stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, ...env } });
    if (r.error) throw r.error;
    return r.status ?? 1;
  },
};

/**
 * Packages named in PREFLIGHT_PRETEND_MISSING (comma-separated) count as missing, to try the
 * not-root path on a host that has them all; with it set, nothing is ever installed.
 */
export function pretendMissing(status: (pkg: string) => string | undefined, pretend: string | undefined): (pkg: string) => string | undefined {
  const names = new Set(
    (pretend ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  );
  return (pkg) => (names.has(pkg) ? undefined : status(pkg));
}

export type PreflightResult = { ok: true; installed: string[] } | { ok: false; message: string };

/** Check, and as root install, the packages `tiers` need. */
export function preflight(
  tiers: readonly PackageTier[],
  opts: { isRoot: boolean; status: (pkg: string) => string | undefined; host: Host; log?: (line: string) => void },
): PreflightResult {
  const missing = missingPackages(packagesFor(tiers), opts.status);
  if (missing.length === 0) return { ok: true, installed: [] };
  if (!opts.isRoot) return { ok: false, message: notRootMessage(tiers, missing) };
  opts.log?.(`installing Debian packages for the ${tiers.join(" and ")} tests: ${missing.join(" ")}`);
  installMissing(missing, opts.host);
  const still = missingPackages(missing, opts.status);
  if (still.length > 0) return { ok: false, message: `apt-get finished but these are still not installed: ${still.join(" ")}` };
  return { ok: true, installed: missing };
}

function main(argv: string[]): number {
  const tiers = argv.length > 0 ? argv : ["integration", "lab"];
  const unknown = tiers.filter((t) => !isPackageTier(t));
  if (unknown.length > 0) {
    console.error(`preflight: unknown tier ${unknown.join(", ")} (tiers: ${Object.keys(tierPackages).join(", ")})`);
    return 2;
  }
  const pretend = process.env.PREFLIGHT_PRETEND_MISSING;
  try {
    const result = preflight(tiers as PackageTier[], {
      isRoot: process.getuid?.() === 0 && !pretend,
      status: pretendMissing(dpkgStatus, pretend),
      host: realHost,
      log: (line) => console.error(line),
    });
    if (!result.ok) {
      console.error(result.message);
      return 1;
    }
    return 0;
  } catch (err) {
    console.error(`preflight: ${(err as Error).message}`);
    return 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main(process.argv.slice(2));
