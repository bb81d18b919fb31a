/**
 * The warnings an operator reads in the log when a cluster's files are missing, from a real
 * edgejoin: at start for every cluster, and again on every create and change, each naming the
 * exact paths to fill under the artifacts folder.
 */
import { once } from "node:events";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { loopbackSettings, spawnServer, stopServer, waitHealthy } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";

const adminToken = "artifact-warnings-admin-token-0123456789";
type Line = { level: number; msg: string; cluster?: string; missing?: string[]; artifactsDir?: string };

/** The log's "lacks files" warnings so far, waiting up to 5 s for the `n`th. */
async function lacking(stdout: () => string, n: number, pattern = / lacks files in the artifacts folder: /): Promise<Line[]> {
  let found: Line[] = [];
  for (let i = 0; i < 100; i++) {
    found = stdout()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Line)
      .filter((l) => pattern.test(l.msg));
    if (found.length >= n) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return found;
}

describe("missing-artifact warnings in the log", () => {
  it("at start, on create and on change → one warn line per cluster naming each missing path", { timeout: 60_000 }, async () => {
    const root = testTempDir("artifact-warnings");
    const artifacts = join(root, "artifacts");
    // The installer is there; k3s is not: the warning names exactly what is missing, nothing more.
    mkdirSync(join(artifacts, "ubuntu/casper"), { recursive: true });
    for (const f of ["ubuntu/casper/vmlinuz", "ubuntu/casper/initrd", "ubuntu/ubuntu-live-server-amd64.iso"]) writeFileSync(join(artifacts, f), "x");
    const server = spawnServer({
      ...(await loopbackSettings(root)),
      EDGEJOIN_ADMIN_TOKEN: adminToken,
      EDGEJOIN_ARTIFACTS_DIR: artifacts,
      EDGEJOIN_K3S_VERSION: "v1.31.4+k3s1",
      EDGEJOIN_LOG_LEVEL: "warn",
    });
    await waitHealthy(server);
    const [atStart] = await lacking(server.stdout, 1);
    expect(atStart).toMatchObject({ level: 40, cluster: "default", artifactsDir: artifacts });
    expect(atStart!.missing!.sort()).toEqual(["k3s/install.sh", "k3s/v1.31.4+k3s1/k3s", "k3s/v1.31.4+k3s1/k3s-airgap-images-amd64.tar.zst"]);
    expect(atStart!.msg).toContain("k3s/v1.31.4+k3s1/k3s-airgap-images-amd64.tar.zst");

    const headers = { authorization: `Bearer ${adminToken}`, "content-type": "application/json" };
    mkdirSync(join(artifacts, "k3s"), { recursive: true });
    writeFileSync(join(artifacts, "k3s/install.sh"), "#!/bin/sh\n");
    const patched = await fetch(`${server.url}/api/v1/clusters/1`, { method: "PATCH", headers, body: JSON.stringify({ k3s_version: "v1.30.6+k3s1" }) });
    expect(patched.status).toBe(200);
    const [, onChange] = await lacking(server.stdout, 2);
    expect(onChange!.missing!.sort()).toEqual(["k3s/v1.30.6+k3s1/k3s", "k3s/v1.30.6+k3s1/k3s-airgap-images-amd64.tar.zst"]);

    const created = await fetch(`${server.url}/api/v1/clusters`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        name: "edge-b",
        k3s_version: "v1.30.6+k3s1",
        installer: { kind: "cloud-image", kernel_url: "debian/vmlinuz", initrd_urls: ["debian/initrd.img"] },
      }),
    });
    expect(created.status).toBe(201);
    const [, , onCreate] = await lacking(server.stdout, 3);
    expect(onCreate).toMatchObject({ cluster: "edge-b" });
    expect(onCreate!.missing!.sort()).toEqual([
      "debian/initrd.img",
      "debian/vmlinuz",
      "k3s/v1.30.6+k3s1/k3s",
      "k3s/v1.30.6+k3s1/k3s-airgap-images-amd64.tar.zst",
    ]);
  });

  it("installer files left to a mirror_url that does not serve them → a warning per file naming its URL, on change and at start", {
    timeout: 60_000,
  }, async () => {
    const mirror = createServer((req, res) => res.writeHead(req.url === "/site-mirror/debian/vmlinuz" ? 200 : 404).end());
    mirror.listen(0, "127.0.0.1");
    await once(mirror, "listening");
    onTestFinished(() => new Promise<void>((r) => mirror.close(() => r())));
    const mirrorUrl = `http://127.0.0.1:${(mirror.address() as AddressInfo).port}/site-mirror`;
    const root = testTempDir("mirror-warnings");
    const settings = { ...(await loopbackSettings(root)), EDGEJOIN_ADMIN_TOKEN: adminToken, EDGEJOIN_LOG_LEVEL: "warn" };
    const first = spawnServer(settings);
    await waitHealthy(first);
    const created = await fetch(`${first.url}/api/v1/clusters`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({
        name: "mirrored",
        installer: { kind: "cloud-image", kernel_url: "debian/vmlinuz", initrd_urls: ["debian/initrd.img"], mirror_url: mirrorUrl },
      }),
    });
    expect(created.status).toBe(201);
    const unserved = / is neither in the artifacts folder nor at its mirror /;
    const [onCreate] = await lacking(first.stdout, 1, unserved);
    expect(onCreate).toMatchObject({ level: 40, cluster: "mirrored", path: "debian/initrd.img", url: `${mirrorUrl}/debian/initrd.img` });
    expect(onCreate!.msg).toContain("(404 Not Found)");
    await stopServer(first);

    const second = spawnServer(settings);
    await waitHealthy(second);
    const atStart = await lacking(second.stdout, 1, unserved);
    expect(atStart.map((l) => (l as Line & { path: string }).path)).toEqual(["debian/initrd.img"]);
  });
});
