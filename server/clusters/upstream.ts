/**
 * Where `edgejoin artifacts fetch` gets each file and where it puts it: upstream URLs, the
 * published SHA-256 list that vouches for each, and the artifacts-folder path `neededArtifacts`
 * looks for. Pure: no network, no disk.
 */
import { airgapImagePaths, installScriptPath, k3sBinaryAsset } from "./artifacts.js";

/** What `artifacts fetch` can get. */
export type FetchTarget = "ubuntu-24.04" | "k3s";
export type FetchArch = "amd64" | "arm64";

/** The k3s version form the server accepts (EDGEJOIN_K3S_VERSION, a cluster's `k3s_version`). */
export const k3sVersionPattern = /^v\d+\.\d+\.\d+\+k3s\d+$/;
/** An Ubuntu 24.04 point release (`24.04.3`), or the series itself for its newest point release. */
export const ubuntuReleasePattern = /^24\.04(\.\d{1,2})?$/;

/**
 * An upstream URL as a mirror holds it: `<mirror>/<host><path>`, e.g.
 * `http://mirror/github.com/k3s-io/k3s/releases/download/...`. One rule for every upstream, so a
 * plain static web server filled with `wget -x` (which makes the same tree) is a mirror.
 */
export function viaMirror(url: string, mirror: string | undefined): string {
  if (!mirror) return url;
  const u = new URL(url);
  return `${mirror.replace(/\/+$/, "")}/${u.host}${u.pathname}`;
}

/** The list of published sums a fetch starts with. */
export type SumsSource = { url: string; saveAs: string | null };

/**
 * One file to download. `sumsName` is its name in the published list (the sum is looked up
 * there); null for a file upstream publishes no sum for (k3s's install.sh).
 */
export type Download = { url: string; saveAs: string; sumsName: string | null; alternativesInSums?: { sumsName: string; url: string; saveAs: string }[] };

/** k3s VERSION for ARCH: the sums list, the binary, the air-gap images (zst, else gz), install.sh. */
export function k3sPlan(version: string, arch: FetchArch): { sums: SumsSource; downloads: Download[] } {
  const base = `https://github.com/k3s-io/k3s/releases/download/${encodeURIComponent(version)}`;
  const binary = k3sBinaryAsset(arch);
  const [zst, gz] = airgapImagePaths(version, arch) as [string, string];
  const assetOf = (path: string) => path.slice(path.lastIndexOf("/") + 1);
  return {
    sums: { url: `${base}/sha256sum-${arch}.txt`, saveAs: `k3s/${version}/sha256sum-${arch}.txt` },
    downloads: [
      { url: `${base}/${binary}`, saveAs: `k3s/${version}/${binary}`, sumsName: binary },
      {
        url: `${base}/${assetOf(zst)}`,
        saveAs: zst,
        sumsName: assetOf(zst),
        // Releases before v1.26 publish only the .tar.gz; /artifacts/ and the agent take either.
        alternativesInSums: [{ sumsName: assetOf(gz), url: `${base}/${assetOf(gz)}`, saveAs: gz }],
      },
      // get.k3s.io publishes no sum: the file is checked to be a shell script and its SHA-256 printed.
      { url: "https://get.k3s.io/", saveAs: installScriptPath, sumsName: null },
    ],
  };
}

/** Where an Ubuntu 24.04 release's live-server ISO lives: releases.ubuntu.com has amd64, cdimage the other arches. */
function ubuntuBase(release: string, arch: FetchArch): string {
  return arch === "amd64" ? `https://releases.ubuntu.com/${release}` : `https://cdimage.ubuntu.com/releases/${release}/release`;
}

/**
 * The artifacts folder an Ubuntu live server for ARCH goes to: `ubuntu/` for amd64 (the default
 * installer's paths), `ubuntu-arm64/` for arm64 (the casper names are the same for both).
 */
export function ubuntuFolder(arch: FetchArch): string {
  return arch === "amd64" ? "ubuntu" : `ubuntu-${arch}`;
}

/** Ubuntu 24.04 (the newest point release, or RELEASE): the SHA256SUMS list, then the ISO named in it. */
export function ubuntuPlan(release: string, arch: FetchArch): { sums: SumsSource; iso: (sums: Map<string, string>) => Download | string } {
  const base = ubuntuBase(release, arch);
  const folder = ubuntuFolder(arch);
  return {
    sums: { url: `${base}/SHA256SUMS`, saveAs: `${folder}/SHA256SUMS` },
    iso: (sums) => {
      const wanted = new RegExp(`^ubuntu-${release.replace(/\./g, "\\.")}(\\.\\d+)?-live-server-${arch}\\.iso$`);
      const name = [...sums.keys()]
        .filter((n) => wanted.test(n))
        .sort(byPointRelease)
        .at(-1);
      if (!name) return `SHA256SUMS at ${base} lists no ubuntu-${release}*-live-server-${arch}.iso`;
      return { url: `${base}/${name}`, saveAs: `${folder}/ubuntu-live-server-${arch}.iso`, sumsName: name };
    },
  };
}

/** The files taken out of the verified ISO: what the installer profile's kernel and initrd name. */
export function ubuntuBootFiles(arch: FetchArch): { inIso: string; saveAs: string }[] {
  const folder = ubuntuFolder(arch);
  return [
    { inIso: "casper/vmlinuz", saveAs: `${folder}/casper/vmlinuz` },
    { inIso: "casper/initrd", saveAs: `${folder}/casper/initrd` },
  ];
}

function byPointRelease(a: string, b: string): number {
  const point = (n: string) => Number(/^ubuntu-\d+\.\d+\.(\d+)/.exec(n)?.[1] ?? 0);
  return point(a) - point(b);
}

/**
 * A `sha256sum` listing (`HEX  name` or `HEX *name`, as Ubuntu and k3s publish) → name → lowercase
 * hex. Lines that are not such a pair are skipped; a name listed twice with two sums is refused.
 */
export function parseSha256Sums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^([0-9a-fA-F]{64}) [ *](?:\.\/)?(\S.*?)\s*$/.exec(line);
    if (!m) continue;
    const [, hex, name] = m as unknown as [string, string, string];
    const before = sums.get(name);
    if (before !== undefined && before !== hex.toLowerCase()) throw new Error(`the sums list gives ${name} two different sums`);
    sums.set(name, hex.toLowerCase());
  }
  return sums;
}
