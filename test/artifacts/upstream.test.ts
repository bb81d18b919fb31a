/**
 * What `artifacts fetch` asks upstream for and where it puts it, without a network: the sums
 * lists as Ubuntu and k3s publish them, the mirror mapping, the paths the cluster check expects,
 * and an ISO reader that refuses what is not an ISO instead of looping or crashing.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { neededArtifacts } from "../../server/clusters/artifacts.js";
import { k3sPlan, parseSha256Sums, ubuntuBootFiles, ubuntuPlan, viaMirror } from "../../server/clusters/upstream.js";
import { locateInIso } from "../../server/files/iso9660.js";
import { defaultInstaller } from "../../server/store/clusters.js";
import { testTempDir } from "../helpers/temp-dir.js";

const a = "a".repeat(64);
const b = "B".repeat(64);

describe("published SHA-256 lists", () => {
  it("`HEX  name` (k3s) and `HEX *name` (Ubuntu) → name → lowercase hex; other lines skipped", () => {
    const sums = parseSha256Sums(`${a}  k3s\n${b} *ubuntu-24.04.3-live-server-amd64.iso\r\n# comment\nnot a sum\n`);
    expect([...sums]).toEqual([
      ["k3s", a],
      ["ubuntu-24.04.3-live-server-amd64.iso", "b".repeat(64)],
    ]);
  });

  it("one name with two different sums → refused", () => {
    expect(() => parseSha256Sums(`${a}  k3s\n${"c".repeat(64)}  k3s\n`)).toThrow(/two different sums/);
  });
});

describe("upstream URLs and the layout", () => {
  it("a mirror holds each URL under its host name; the k3s version's + stays encoded", () => {
    expect(viaMirror("https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/k3s", "http://m:8/base/")).toBe(
      "http://m:8/base/github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/k3s",
    );
    expect(viaMirror("https://get.k3s.io/", undefined)).toBe("https://get.k3s.io/");
  });

  it("k3s and Ubuntu land exactly where the cluster check looks (default installer, amd64)", () => {
    const plan = k3sPlan("v1.31.4+k3s1", "amd64");
    expect(plan.sums.url).toBe("https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/sha256sum-amd64.txt");
    const iso = ubuntuPlan("24.04", "amd64").iso(new Map([["ubuntu-24.04.3-live-server-amd64.iso", a]]));
    const written = [...plan.downloads.map((d) => d.saveAs), ...ubuntuBootFiles("amd64").map((f) => f.saveAs), typeof iso === "string" ? iso : iso.saveAs];
    const needed = neededArtifacts({ k3sVersion: "v1.31.4+k3s1", installer: defaultInstaller }, ["x86_64"]).map((n) => n.path);
    expect(written.sort()).toEqual(needed.sort());
  });

  it("Ubuntu: the newest point release SHA256SUMS lists for the arch; none → a reason; arm64 from cdimage", () => {
    const sums = new Map([
      ["ubuntu-24.04.2-live-server-amd64.iso", a],
      ["ubuntu-24.04.10-live-server-amd64.iso", a],
      ["ubuntu-24.04.3-live-server-amd64.iso", a],
      ["ubuntu-24.04.3-desktop-amd64.iso", a],
    ]);
    const picked = ubuntuPlan("24.04", "amd64").iso(sums);
    expect(typeof picked !== "string" && picked.sumsName).toBe("ubuntu-24.04.10-live-server-amd64.iso");
    expect(ubuntuPlan("24.04", "arm64").iso(sums)).toMatch(/lists no ubuntu-24\.04\*-live-server-arm64\.iso/);
    expect(ubuntuPlan("24.04", "arm64").sums.url).toBe("https://cdimage.ubuntu.com/releases/24.04/release/SHA256SUMS");
  });
});

describe("reading an ISO 9660 image", () => {
  it("a file that is not an ISO, or too short → a reason, no throw past it", async () => {
    const dir = testTempDir("iso");
    const junk = join(dir, "junk.iso");
    writeFileSync(junk, Buffer.alloc(40_000, 0x41));
    expect(await locateInIso(junk, "casper/vmlinuz")).toBe("not an ISO 9660 image (no primary volume descriptor)");
    const short = join(dir, "short.iso");
    writeFileSync(short, "tiny");
    await expect(locateInIso(short, "casper/vmlinuz")).rejects.toThrow(/ends early/);
  });

  it("a primary volume descriptor whose root folder claims 1 GB → refused, not read into memory", async () => {
    const dir = testTempDir("iso");
    const img = Buffer.alloc(17 * 2048);
    const pvd = img.subarray(16 * 2048);
    pvd[0] = 1;
    pvd.write("CD001", 1, "latin1");
    pvd.writeUInt16LE(2048, 128);
    pvd.writeUInt32LE(18, 156 + 2);
    pvd.writeUInt32LE(1 << 30, 156 + 10);
    pvd[156 + 25] = 0x02;
    const path = join(dir, "huge-root.iso");
    writeFileSync(path, img);
    expect(await locateInIso(path, "casper/vmlinuz")).toMatch(/implausibly large/);
  });
});
