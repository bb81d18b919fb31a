/**
 * `edgejoin artifacts fetch|ls`, run as an admin runs it (bin/edgejoin.js, its own process) against
 * a loopback mirror this test serves: files land where /artifacts/ and the cluster check look for
 * them, each checked against the published SHA-256 list; a wrong sum or a missing file ends in a
 * non-zero exit, one line naming the file, and nothing half-written left behind.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loopbackSettings, spawnServer, waitHealthy } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { edgejoin as runCli } from "../cli/helpers.js";
import { bigBody, type Body, type Mirror, peakRss, sha256Of, startMirror } from "./mirror.js";

const version = "v1.31.4+k3s1";
const release = "/github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1";
const installSh = Buffer.from('#!/bin/sh\necho "k3s install stand-in"\n');

/** The CLI as the other CLI tests run it, given two minutes: a fetch streams up to 160 MiB. */
const edgejoin = (args: string[], env: Record<string, string> = {}, onPid?: (pid: number) => void) => runCli(args, env, 120_000, onPid);

const sumsLine = (body: Body, name: string) => `${sha256Of(body)}  ${name}\n`;

/** A k3s release as GitHub lays it out: the sums list names what it vouches for. */
function k3sRelease(binary: Body, images: Body, opts: { badSumFor?: string; arch?: "amd64" | "arm64" } = {}): Map<string, Body> {
  const arch = opts.arch ?? "amd64";
  const binName = arch === "amd64" ? "k3s" : "k3s-arm64";
  const imgName = `k3s-airgap-images-${arch}.tar.zst`;
  const sum = (b: Body, name: string) => (opts.badSumFor === name ? `${"0".repeat(64)}  ${name}\n` : sumsLine(b, name));
  return new Map<string, Body>([
    [
      `${release}/sha256sum-${arch}.txt`,
      Buffer.from(sum(binary, binName) + sum(images, imgName) + sumsLine(Buffer.from("x"), `k3s-airgap-images-${arch}.tar.gz`)),
    ],
    [`${release}/${binName}`, binary],
    [`${release}/${imgName}`, images],
    ["/get.k3s.io/", installSh],
  ]);
}

/** Leftover temporary names anywhere under `dir`. */
function partials(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => f.includes(".partial-"));
}

const mirrors: Mirror[] = [];
afterEach(async () => {
  for (const m of mirrors.splice(0)) await m.close();
});

async function mirrorOf(files: Map<string, Body>): Promise<Mirror> {
  const m = await startMirror(files);
  mirrors.push(m);
  return m;
}

describe("edgejoin artifacts fetch k3s against a loopback mirror", () => {
  it("good sums → binary, images, install.sh and the sums list land in the layout; a binary twice k3s's size is streamed, not held; a re-run fetches nothing again", async () => {
    const dir = join(testTempDir("fetch"), "artifacts");
    // 160 MiB: held in memory it would raise the peak by at least that; streamed, the peak grows by
    // the collector's slack alone (about 50 MB here, the same for 70 MB or 300 MB).
    const binary = bigBody(160);
    const images = Buffer.from("zstd images stand-in");
    const mirror = await mirrorOf(k3sRelease(binary, images));
    let pid = 0;
    const rss: Record<string, number> = {};
    mirror.onBody = (path, phase) => {
      if (path === `${release}/k3s`) rss[phase] = peakRss(pid);
    };
    const run = await edgejoin(["artifacts", "fetch", "k3s", version, "--mirror", mirror.url, "--dir", dir], {}, (p) => (pid = p));
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`fetched  k3s/${version}/k3s (167.8 MB, SHA-256 verified)`);
    expect(run.stdout).toMatch(/fetched {2}k3s\/install\.sh \(1 KB; no published sum: its SHA-256 is [0-9a-f]{64}\)/);
    expect(sha256Of(readFileSync(join(dir, `k3s/${version}/k3s`)))).toBe(sha256Of(binary));
    expect(readFileSync(join(dir, `k3s/${version}/k3s-airgap-images-amd64.tar.zst`))).toEqual(images);
    expect(readFileSync(join(dir, "k3s/install.sh"))).toEqual(installSh);
    expect(existsSync(join(dir, `k3s/${version}/sha256sum-amd64.txt`))).toBe(true);
    expect(partials(dir)).toEqual([]);
    // Measured while the last chunk was being sent: 160 MiB had passed through the process by then.
    expect(rss.end! - rss.start!, JSON.stringify(rss)).toBeLessThan(100 * 1024 * 1024);

    mirror.requests.length = 0;
    const again = await edgejoin(["artifacts", "fetch", "k3s", version, "--mirror", mirror.url, "--dir", dir]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`kept     k3s/${version}/k3s (already there, SHA-256 matches)`);
    expect(mirror.requests).not.toContain(`${release}/k3s`);
  }, 180_000);

  it("a published sum that does not match → exit 1, one line naming the file, the download deleted, no partial left", async () => {
    const dir = join(testTempDir("fetch"), "artifacts");
    const mirror = await mirrorOf(k3sRelease(Buffer.from("binary"), Buffer.from("tampered images"), { badSumFor: "k3s-airgap-images-amd64.tar.zst" }));
    const run = await edgejoin(["artifacts", "fetch", "k3s", version, "--mirror", mirror.url, "--dir", dir]);
    expect(run.code).toBe(1);
    const lines = run.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^edgejoin: k3s\/v1\.31\.4\+k3s1\/k3s-airgap-images-amd64\.tar\.zst: SHA-256 mismatch \(published 0{64}, downloaded [0-9a-f]{64}\); deleted the download$/,
    );
    expect(existsSync(join(dir, `k3s/${version}/k3s-airgap-images-amd64.tar.zst`))).toBe(false);
    expect(partials(dir)).toEqual([]);
    // What was verified before the bad file stays.
    expect(readFileSync(join(dir, `k3s/${version}/k3s`), "utf8")).toBe("binary");
  }, 120_000);

  it("a file the sums list names but the mirror lacks (arm64 binary 404) → exit 1, one line naming the URL", async () => {
    const dir = join(testTempDir("fetch"), "artifacts");
    const files = k3sRelease(Buffer.from("arm binary"), Buffer.from("arm images"), { arch: "arm64" });
    files.delete(`${release}/k3s-arm64`);
    const mirror = await mirrorOf(files);
    const run = await edgejoin(["artifacts", "fetch", "k3s", version, "--arch", "arm64", "--mirror", mirror.url, "--dir", dir]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`edgejoin: cannot download ${mirror.url}${release}/k3s-arm64: 404 Not Found\n`);
    expect(existsSync(join(dir, `k3s/${version}/k3s-arm64`))).toBe(false);
    expect(partials(dir)).toEqual([]);
  }, 120_000);

  it("install.sh that is not a shell script (a captive portal's page) → refused and deleted", async () => {
    const dir = join(testTempDir("fetch"), "artifacts");
    const files = k3sRelease(Buffer.from("b"), Buffer.from("i"));
    files.set("/get.k3s.io/", Buffer.from("<html>please log in</html>"));
    const mirror = await mirrorOf(files);
    const run = await edgejoin(["artifacts", "fetch", "k3s", version, "--mirror", mirror.url, "--dir", dir]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe("edgejoin: k3s/install.sh: not a shell script (no #!/bin/sh line); deleted the download\n");
    expect(existsSync(join(dir, "k3s/install.sh"))).toBe(false);
  }, 120_000);

  it("a bad version, arch or target → exit 2 and one line, nothing fetched", async () => {
    for (const args of [["k3s", "1.31"], ["k3s", version, "--arch", "s390x"], ["debian-12"]]) {
      const run = await edgejoin(["artifacts", "fetch", ...args, "--mirror", "http://127.0.0.1:9", "--dir", testTempDir("fetch")]);
      expect(run.code, args.join(" ")).toBe(2);
      expect(run.stderr.trimEnd().split("\n"), run.stderr).toHaveLength(1);
    }
  }, 120_000);
});

/** An ISO built the way Ubuntu's are (xorriso, Rock Ridge and Joliet) with the casper files inside. */
function buildIso(root: string, kernel: Buffer, initrd: Buffer): Buffer {
  const which = spawnSync("xorriso", ["-version"], { encoding: "utf8" });
  if (which.error) throw new Error("xorriso is missing: install the Debian package xorriso (apt-get install xorriso)");
  const tree = join(root, "iso-tree");
  mkdirSync(join(tree, "casper"), { recursive: true });
  writeFileSync(join(tree, "casper/vmlinuz"), kernel);
  writeFileSync(join(tree, "casper/initrd"), initrd);
  writeFileSync(join(tree, "casper/filesystem.manifest"), "stand-in\n");
  const out = join(root, "live.iso");
  const r = spawnSync("xorriso", ["-as", "mkisofs", "-r", "-J", "-V", "Ubuntu-Server 24.04.3 LTS amd64", "-o", out, tree], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`xorriso failed: ${r.stderr}`);
  return readFileSync(out);
}

describe("edgejoin artifacts fetch ubuntu-24.04 against a loopback mirror", () => {
  it("the newest live-server ISO in SHA256SUMS, verified, then vmlinuz and initrd taken out of it where the default installer looks", async () => {
    const root = testTempDir("fetch-ubuntu");
    const dir = join(root, "artifacts");
    const kernel = Buffer.concat([Buffer.from("MZ kernel"), Buffer.alloc(300_000, 7)]);
    const initrd = Buffer.concat([Buffer.from("initrd"), Buffer.alloc(1_200_000, 9)]);
    const iso = buildIso(root, kernel, initrd);
    const sums =
      `${"1".repeat(64)} *ubuntu-24.04.3-desktop-amd64.iso\n` +
      `${"2".repeat(64)} *ubuntu-24.04.2-live-server-amd64.iso\n` +
      `${sha256Of(iso)} *ubuntu-24.04.3-live-server-amd64.iso\n`;
    const mirror = await mirrorOf(
      new Map<string, Body>([
        ["/releases.ubuntu.com/24.04/SHA256SUMS", Buffer.from(sums)],
        ["/releases.ubuntu.com/24.04/ubuntu-24.04.3-live-server-amd64.iso", iso],
      ]),
    );
    const run = await edgejoin(["artifacts", "fetch", "ubuntu-24.04", "--mirror", mirror.url, "--dir", dir]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    // Compared by digest: vitest's deep equality walks a Buffer byte by byte (a minute for these).
    expect(sha256Of(readFileSync(join(dir, "ubuntu/ubuntu-live-server-amd64.iso")))).toBe(sha256Of(iso));
    expect(sha256Of(readFileSync(join(dir, "ubuntu/casper/vmlinuz")))).toBe(sha256Of(kernel));
    expect(sha256Of(readFileSync(join(dir, "ubuntu/casper/initrd")))).toBe(sha256Of(initrd));
    expect(run.stdout).toContain("unpacked ubuntu/casper/initrd (1.2 MB, from the verified ISO)");
    expect(partials(dir)).toEqual([]);
  }, 120_000);

  it("an ISO whose sum does not match → exit 1 naming it, and no kernel or initrd taken from it", async () => {
    const root = testTempDir("fetch-ubuntu");
    const dir = join(root, "artifacts");
    const iso = buildIso(root, Buffer.from("k"), Buffer.from("i"));
    const mirror = await mirrorOf(
      new Map<string, Body>([
        ["/releases.ubuntu.com/24.04.3/SHA256SUMS", Buffer.from(`${"3".repeat(64)} *ubuntu-24.04.3-live-server-amd64.iso\n`)],
        ["/releases.ubuntu.com/24.04.3/ubuntu-24.04.3-live-server-amd64.iso", iso],
      ]),
    );
    const run = await edgejoin(["artifacts", "fetch", "ubuntu-24.04", "24.04.3", "--mirror", mirror.url, "--dir", dir]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^edgejoin: ubuntu\/ubuntu-live-server-amd64\.iso: SHA-256 mismatch \(published 3{64}, downloaded [0-9a-f]{64}\); deleted the download\n$/,
    );
    expect(existsSync(join(dir, "ubuntu/ubuntu-live-server-amd64.iso"))).toBe(false);
    expect(existsSync(join(dir, "ubuntu/casper/vmlinuz"))).toBe(false);
  }, 120_000);
});

describe("edgejoin artifacts ls against a running server", () => {
  it("the default cluster lacks its installer and k3s files; after both fetches it has them all", async () => {
    const root = testTempDir("artifacts-ls");
    const dir = join(root, "artifacts");
    const token = "artifacts-ls-admin-token-0123456789";
    const settings = {
      ...(await loopbackSettings(root)),
      EDGEJOIN_ARTIFACTS_DIR: dir,
      EDGEJOIN_ADMIN_TOKEN: token,
      EDGEJOIN_K3S_VERSION: version,
      EDGEJOIN_LOG_LEVEL: "warn",
    };
    const server = spawnServer(settings, "main");
    await waitHealthy(server);
    const env = { EDGEJOIN_URL: server.url, EDGEJOIN_ADMIN_TOKEN: token };

    const before = await edgejoin(["artifacts", "ls", "--json"], env);
    expect(before.code, before.stderr).toBe(0);
    const missingBefore = (JSON.parse(before.stdout) as { clusters: { name: string; artifacts: { missing: string[] } }[] }).clusters[0]!;
    expect(missingBefore.name).toBe("default");
    expect(missingBefore.artifacts.missing.sort()).toEqual(
      [
        "k3s/install.sh",
        `k3s/${version}/k3s`,
        `k3s/${version}/k3s-airgap-images-amd64.tar.zst`,
        "ubuntu/casper/initrd",
        "ubuntu/casper/vmlinuz",
        "ubuntu/ubuntu-live-server-amd64.iso",
      ].sort(),
    );
    const table = await edgejoin(["artifacts", "ls"], env);
    expect(table.stdout.split("\n")[0]).toMatch(/^CLUSTER\s+K3S\s+STATUS\s+PATH$/);
    expect(table.stdout).toMatch(/default\s+v1\.31\.4\+k3s1\s+missing\s+ubuntu\/casper\/vmlinuz/);

    const iso = buildIso(root, Buffer.from("kernel"), Buffer.from("initrd"));
    const mirror = await mirrorOf(
      new Map<string, Body>([
        ...k3sRelease(Buffer.from("k3s binary"), Buffer.from("images")),
        ["/releases.ubuntu.com/24.04/SHA256SUMS", Buffer.from(`${sha256Of(iso)} *ubuntu-24.04.3-live-server-amd64.iso\n`)],
        ["/releases.ubuntu.com/24.04/ubuntu-24.04.3-live-server-amd64.iso", iso],
      ]),
    );
    for (const what of [["k3s", version], ["ubuntu-24.04"]]) {
      const r = await edgejoin(["artifacts", "fetch", ...what, "--mirror", mirror.url, "--dir", dir]);
      expect(r.code, r.stderr).toBe(0);
    }
    const after = await edgejoin(["artifacts", "ls", "--json"], env);
    const report = (JSON.parse(after.stdout) as { clusters: { artifacts: { missing: string[]; present: string[] } }[] }).clusters[0]!.artifacts;
    expect(report.missing).toEqual([]);
    expect(report.present).toHaveLength(6);
  }, 180_000);
});
