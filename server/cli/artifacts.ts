/**
 * `edgejoin artifacts fetch|ls`: fill the artifacts folder from upstream (or a mirror), every file
 * checked against the SHA-256 list its publisher signs off, and see what each cluster still lacks.
 *
 * `ls` asks the running server (`GET /api/v1/clusters/:id` → `artifacts`) rather than reading the
 * folder: the server's answer is the same check that decides `/boot.ipxe` and the start-up
 * warnings, it knows each cluster's k3s version, installer and its machines' architectures, and it
 * works from an admin's laptop. `fetch` writes to a local folder instead, because it is meant to
 * run on a machine with internet whose folder is then carried to an air-gapped site.
 */
import { openSync, readSync, closeSync, renameSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Command } from "commander";
import {
  k3sPlan,
  k3sVersionPattern,
  parseSha256Sums,
  ubuntuBootFiles,
  ubuntuPlan,
  ubuntuReleasePattern,
  viaMirror,
  type Download,
  type FetchArch,
  type SumsSource,
} from "../clusters/upstream.js";
import { artifactsDirOf } from "../config.js";
import { DownloadError, downloadVerified, fetchText } from "../files/download.js";
import { extractFromIso } from "../files/iso9660.js";
import { CliError, clientFromEnv } from "./client.js";
import type { ClusterView } from "./lookup.js";
import { printJson, printList } from "./table.js";

type FetchOptions = { arch: string; mirror?: string; dir?: string };

const megabytes = (n: number) => (n >= 1_000_000 ? `${(n / 1_000_000).toFixed(1)} MB` : `${Math.ceil(n / 1000)} KB`);

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The published sums list, parsed, and kept in the folder beside what it vouches for. */
async function sumsFrom(source: SumsSource, mirror: string | undefined, dir: string): Promise<Map<string, string>> {
  const url = viaMirror(source.url, mirror);
  const text = await fetchText(url);
  let sums: Map<string, string>;
  try {
    sums = parseSha256Sums(text);
  } catch (err) {
    throw new CliError(`${url}: ${(err as Error).message}`);
  }
  if (sums.size === 0) throw new CliError(`${url} lists no SHA-256 sums: is the mirror serving the right file?`);
  if (source.saveAs) {
    const target = join(dir, source.saveAs);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(`${target}.partial-${process.pid}`, text);
    renameSync(`${target}.partial-${process.pid}`, target);
  }
  return sums;
}

async function fetchOne(
  d: Download,
  expected: string | null,
  mirror: string | undefined,
  dir: string,
  check?: (p: string) => string | undefined,
): Promise<void> {
  const r = await downloadVerified(viaMirror(d.url, mirror), join(dir, d.saveAs), expected, { name: d.saveAs, ...(check ? { check } : {}) });
  if (r.skipped) say(`kept     ${d.saveAs} (already there, SHA-256 matches)`);
  else if (expected === null) say(`fetched  ${d.saveAs} (${megabytes(r.bytes)}; no published sum: its SHA-256 is ${r.sha256})`);
  else say(`fetched  ${d.saveAs} (${megabytes(r.bytes)}, SHA-256 verified)`);
}

/** install.sh has no published sum: at least refuse an HTML error page or a captive portal's answer. */
function shellScript(partial: string): string | undefined {
  const fd = openSync(partial, "r");
  try {
    const head = Buffer.alloc(32);
    const n = readSync(fd, head, 0, 32, 0);
    return /^#!\s*\/(usr\/)?bin\/(env )?(ba)?sh/.test(head.subarray(0, n).toString("latin1")) ? undefined : "not a shell script (no #!/bin/sh line)";
  } finally {
    closeSync(fd);
  }
}

async function fetchK3s(version: string, arch: FetchArch, mirror: string | undefined, dir: string): Promise<void> {
  if (!k3sVersionPattern.test(version)) throw new CliError(`k3s version must look like v1.31.4+k3s1 (got ${version})`, 2);
  const plan = k3sPlan(version, arch);
  const sums = await sumsFrom(plan.sums, mirror, dir);
  for (const d of plan.downloads) {
    if (d.sumsName === null) {
      await fetchOne(d, null, mirror, dir, shellScript);
      continue;
    }
    const pick = sums.has(d.sumsName) ? d : d.alternativesInSums?.find((a) => sums.has(a.sumsName));
    if (!pick) throw new CliError(`${d.saveAs}: sha256sum-${arch}.txt lists no ${d.sumsName}; is ${version} a k3s release for ${arch}?`);
    await fetchOne({ ...d, ...pick }, sums.get(pick.sumsName!)!, mirror, dir);
  }
}

async function fetchUbuntu(release: string, arch: FetchArch, mirror: string | undefined, dir: string): Promise<void> {
  if (!ubuntuReleasePattern.test(release)) throw new CliError(`the Ubuntu release must be 24.04 or a point release such as 24.04.3 (got ${release})`, 2);
  const plan = ubuntuPlan(release, arch);
  const sums = await sumsFrom(plan.sums, mirror, dir);
  const iso = plan.iso(sums);
  if (typeof iso === "string") throw new CliError(iso);
  await fetchOne(iso, sums.get(iso.sumsName!)!, mirror, dir);
  // Taken from the ISO just verified: Ubuntu publishes no sums for the casper files themselves.
  for (const f of ubuntuBootFiles(arch)) {
    try {
      const size = await extractFromIso(join(dir, iso.saveAs), f.inIso, join(dir, f.saveAs));
      say(`unpacked ${f.saveAs} (${megabytes(size)}, from the verified ISO)`);
    } catch (err) {
      throw new CliError(`${f.saveAs}: cannot take ${f.inIso} out of ${iso.saveAs} (${(err as Error).message})`);
    }
  }
  if (arch !== "amd64") {
    say(
      `an ${arch} cluster's installer names these: kernel_url ${ubuntuBootFiles(arch)[0]!.saveAs}, initrd_urls [${ubuntuBootFiles(arch)[1]!.saveAs}], iso_url ${iso.saveAs}`,
    );
  }
}

/** One row of `artifacts ls`: a path a cluster needs and whether it has it. */
type ArtifactRow = { cluster: string; k3s_version: string; status: "present" | "missing" | "mirrored"; path: string };
type ClusterArtifacts = ClusterView & { k3s_version: string; artifacts: { present: string[]; missing: string[]; mirrored: string[] } };

/** Add `artifacts` and its subcommands. */
export function registerArtifacts(program: Command): void {
  const artifacts = program
    .command("artifacts")
    .description("the files machines install from /artifacts/: fetch them from upstream, see what each cluster lacks");

  artifacts
    .command("fetch")
    .description(
      "download Ubuntu 24.04's live server (ISO, kernel, initrd) or a k3s release (binary, air-gap images, install.sh) into the artifacts folder, each file checked against its published SHA-256",
    )
    .argument("<what>", "ubuntu-24.04 or k3s")
    .argument("[version]", "k3s: the release, e.g. v1.31.4+k3s1 (required); ubuntu-24.04: a point release such as 24.04.3 (default: the newest)")
    .option("--arch <arch>", "amd64 or arm64", "amd64")
    .option("--mirror <url>", "fetch from this base URL instead, holding each upstream URL under its host name (http://mirror/github.com/k3s-io/...)")
    .option("--dir <dir>", "the artifacts folder (default: EDGEJOIN_ARTIFACTS_DIR, else EDGEJOIN_DATA_DIR/artifacts, else ./data/artifacts)")
    .action(async (what: string, version: string | undefined, opts: FetchOptions) => {
      if (opts.arch !== "amd64" && opts.arch !== "arm64") throw new CliError(`--arch must be amd64 or arm64 (got ${opts.arch})`, 2);
      if (opts.mirror !== undefined && !/^https?:\/\/[^/\s]+/.test(opts.mirror))
        throw new CliError(`--mirror must be an http:// or https:// URL (got ${opts.mirror})`, 2);
      const dir = opts.dir ?? artifactsDirOf(process.env);
      try {
        if (what === "k3s") {
          if (!version) throw new CliError("say which k3s release: edgejoin artifacts fetch k3s v1.31.4+k3s1", 2);
          await fetchK3s(version, opts.arch, opts.mirror, dir);
        } else if (what === "ubuntu-24.04") {
          await fetchUbuntu(version ?? "24.04", opts.arch, opts.mirror, dir);
        } else throw new CliError(`can fetch ubuntu-24.04 or k3s (got ${what})`, 2);
      } catch (err) {
        if (err instanceof DownloadError) throw new CliError(err.message);
        throw err;
      }
      say(`done: ${dir} (served at /artifacts/; \`edgejoin artifacts ls\` shows what each cluster still lacks)`);
    });

  artifacts
    .command("ls")
    .description(
      "per cluster, the files it needs under /artifacts/ (for its k3s version, installer and its machines' architectures): present, missing, or left to the installer's mirror_url",
    )
    .option("--json", "print the server's artifact reports")
    .action(async (opts: { json?: boolean }) => {
      const client = clientFromEnv();
      const list = await client.all<ClusterView>("/api/v1/clusters", "clusters");
      const reports = await Promise.all(list.map((c) => client.json<ClusterArtifacts>("GET", `/api/v1/clusters/${c.id}`)));
      if (opts.json) {
        printJson({ clusters: reports.map((r) => ({ id: r.id, name: r.name, k3s_version: r.k3s_version, artifacts: r.artifacts })) });
        return;
      }
      const rows: ArtifactRow[] = reports.flatMap((r) =>
        (["missing", "present", "mirrored"] as const).flatMap((status) =>
          r.artifacts[status].map((path) => ({ cluster: r.name, k3s_version: r.k3s_version, status, path })),
        ),
      );
      printList(
        opts,
        "artifacts",
        rows,
        [
          { header: "CLUSTER", value: (r) => r.cluster },
          { header: "K3S", value: (r) => r.k3s_version },
          { header: "STATUS", value: (r) => r.status },
          { header: "PATH", value: (r) => r.path },
        ],
        "no clusters",
      );
    });
}
