/**
 * Which files under `/artifacts/` a cluster needs, and which of them are there: its installer's
 * kernel, initrds and ISO (relative URLs only: absolute ones are the admin's own server), the k3s
 * install script, binary and air-gap images for each architecture its machines have. Pure: the
 * caller says which files exist.
 */
import type { InstallerProfile } from "../../db/schema.js";

/** A file a cluster needs. `alternatives` are other names that serve as well (k3s ships .tar.zst and .tar.gz). */
export type NeededArtifact = { path: string; alternatives: string[]; purpose: "installer" | "k3s" | "airgap-images"; arch?: string };

/** What the check found: paths present, missing (each named as the admin should create it), and served by the installer's mirror. */
export type ArtifactReport = { present: string[]; missing: string[]; mirrored: string[] };

const absolute = /^[a-z][a-z0-9+.-]*:\/\//i;

/** k3s's name for an architecture as iPXE's `${buildarch}` or the agent reports it. */
export function k3sArch(arch: string | null | undefined): "amd64" | "arm64" | "arm" {
  const a = (arch ?? "").toLowerCase();
  if (a === "arm64" || a === "aarch64") return "arm64";
  if (a === "arm" || a === "arm32" || a === "armhf" || a === "armv7l") return "arm";
  // x86_64, and i386 too: a BIOS machine's undionly.kpxe reports i386 on x86-64 hardware.
  return "amd64";
}

/** k3s's release asset of the binary for an architecture. */
export function k3sBinaryAsset(arch: "amd64" | "arm64" | "arm"): string {
  return arch === "amd64" ? "k3s" : arch === "arm64" ? "k3s-arm64" : "k3s-armhf";
}

/** The air-gap images tarball names k3s publishes for a version and arch, preferred first. */
export function airgapImagePaths(version: string, arch: "amd64" | "arm64" | "arm"): string[] {
  return [`k3s/${version}/k3s-airgap-images-${arch}.tar.zst`, `k3s/${version}/k3s-airgap-images-${arch}.tar.gz`];
}

/** The k3s install script, shared by every version. */
export const installScriptPath = "k3s/install.sh";

/** Every file a cluster needs for the given architectures (amd64 when none is known). */
export function neededArtifacts(cluster: { k3sVersion: string; installer: InstallerProfile }, arches: readonly string[]): NeededArtifact[] {
  const needed: NeededArtifact[] = [];
  const { installer } = cluster;
  const files = [installer.kernel_url, ...installer.initrd_urls, ...(installer.iso_url ? [installer.iso_url] : [])];
  for (const url of files) {
    if (absolute.test(url)) continue;
    needed.push({ path: url.replace(/^\/+/, "").replace(/[?#].*$/, ""), alternatives: [], purpose: "installer" });
  }
  needed.push({ path: installScriptPath, alternatives: [], purpose: "k3s" });
  const kinds = [...new Set((arches.length > 0 ? arches : ["amd64"]).map(k3sArch))].sort();
  for (const arch of kinds) {
    needed.push({ path: `k3s/${cluster.k3sVersion}/${k3sBinaryAsset(arch)}`, alternatives: [], purpose: "k3s", arch });
    const [zst, ...others] = airgapImagePaths(cluster.k3sVersion, arch);
    needed.push({ path: zst!, alternatives: others, purpose: "airgap-images", arch });
  }
  return needed;
}

/** Sort needed files into present, missing and mirrored (an installer file the profile's mirror_url serves). */
export function checkArtifacts(needed: readonly NeededArtifact[], has: (path: string) => boolean, mirrorUrl?: string | null): ArtifactReport {
  const report: ArtifactReport = { present: [], missing: [], mirrored: [] };
  for (const n of needed) {
    const found = [n.path, ...n.alternatives].find(has);
    if (found) report.present.push(found);
    else if (n.purpose === "installer" && mirrorUrl) report.mirrored.push(n.path);
    else report.missing.push(n.path);
  }
  return report;
}

/** The installer's own files that are missing (no mirror to fall back on): such a cluster cannot boot its installer. */
export function missingInstallerFiles(cluster: { k3sVersion: string; installer: InstallerProfile }, has: (path: string) => boolean): string[] {
  const needed = neededArtifacts(cluster, []).filter((n) => n.purpose === "installer");
  return checkArtifacts(needed, has, cluster.installer.mirror_url).missing;
}
