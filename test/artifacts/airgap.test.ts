/**
 * Air-gapped k3s: which artifacts a cluster needs and lacks (API and pure check), registries.yaml
 * validated and handed to machines as YAML, the air-gap images URL for the machine's arch, and
 * `/boot.ipxe` refusing to start an installer whose files are not there.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { machines } from "../../db/schema.js";
import { checkArtifacts, neededArtifacts } from "../../server/clusters/artifacts.js";
import { answerConfigRequest } from "../../server/http/node.js";
import { defaultInstaller } from "../../server/store/clusters.js";
import { makeTestApp, testAdminToken, testPublicUrl } from "../helpers/app.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { addApproved } from "../quorum/fixtures.js";

const version = "v1.31.4+k3s1";
const admin = { authorization: `Bearer ${testAdminToken}`, "content-type": "application/json" };

function withFiles(files: string[]) {
  const dir = testTempDir("airgap");
  for (const f of files) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    writeFileSync(join(dir, f), "x");
  }
  return makeTestApp({ env: { EDGEJOIN_ARTIFACTS_DIR: dir, EDGEJOIN_K3S_VERSION: version } });
}

const registries = {
  mirrors: { "docker.io": { endpoint: ["http://registry.site.lan:5000"] }, "*": { endpoint: ["https://mirror.site.lan"] } },
  configs: { "registry.site.lan:5000": { tls: { insecure_skip_verify: true }, auth: { username: "k3s", password: 'p"w: {x}' } } },
};

describe("what a cluster needs under /artifacts/", () => {
  it("default installer on amd64 → kernel, initrd, ISO, install script, binary, images (.tar.zst or .tar.gz)", () => {
    const needed = neededArtifacts({ k3sVersion: version, installer: defaultInstaller }, ["x86_64", "i386"]);
    expect(needed.map((n) => n.path)).toEqual([
      "ubuntu/casper/vmlinuz",
      "ubuntu/casper/initrd",
      "ubuntu/ubuntu-live-server-amd64.iso",
      "k3s/install.sh",
      `k3s/${version}/k3s`,
      `k3s/${version}/k3s-airgap-images-amd64.tar.zst`,
    ]);
    const has = new Set(["ubuntu/casper/vmlinuz", `k3s/${version}/k3s-airgap-images-amd64.tar.gz`]);
    expect(checkArtifacts(needed, (p) => has.has(p))).toEqual({
      present: ["ubuntu/casper/vmlinuz", `k3s/${version}/k3s-airgap-images-amd64.tar.gz`],
      missing: ["ubuntu/casper/initrd", "ubuntu/ubuntu-live-server-amd64.iso", "k3s/install.sh", `k3s/${version}/k3s`],
      mirrored: [],
    });
    // A mirror serves missing installer files, never k3s ones.
    expect(checkArtifacts(needed, () => false, "http://mirror.lan").mirrored).toHaveLength(3);
  });

  it("GET /api/v1/clusters/:id → artifacts present and missing, arm64 paths once its machine is arm64", async () => {
    const { app, db } = withFiles([
      "ubuntu/casper/vmlinuz",
      "ubuntu/casper/initrd",
      "ubuntu/ubuntu-live-server-amd64.iso",
      "k3s/install.sh",
      `k3s/${version}/k3s`,
    ]);
    const get = async () =>
      (await (await app.request("/api/v1/clusters/1", { headers: admin })).json()) as { artifacts: { present: string[]; missing: string[] } };
    expect((await get()).artifacts.missing).toEqual([`k3s/${version}/k3s-airgap-images-amd64.tar.zst`]);
    const m = addApproved(db, { n: 1, clusterId: 1, now: 1 });
    db.update(machines).set({ arch: "arm64" }).where(eq(machines.id, m.id)).run();
    // Its machines' architectures decide: amd64 only stands in while none is known.
    expect((await get()).artifacts.missing).toEqual([`k3s/${version}/k3s-arm64`, `k3s/${version}/k3s-airgap-images-arm64.tar.zst`]);
  });
});

describe("registries.yaml on a cluster", () => {
  it("PATCH with mirrors → stored and shown; unknown keys, bad endpoints or relative CA paths → 422", async () => {
    const { app } = withFiles([]);
    const ok = await app.request("/api/v1/clusters/1", { method: "PATCH", headers: admin, body: JSON.stringify({ registries }) });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { registries: unknown }).registries).toEqual(registries);
    for (const bad of [
      { mirror: {} },
      { mirrors: { "docker.io": { endpoint: [] } } },
      { mirrors: { "docker.io": { endpoint: ["ftp://x"] } } },
      { mirrors: { "docker.io\nx": { endpoint: ["http://x"] } } },
      { configs: { "r.lan": { tls: { ca_file: "ca.pem" } } } },
    ]) {
      const res = await app.request("/api/v1/clusters/1", { method: "PATCH", headers: admin, body: JSON.stringify({ registries: bad }) });
      expect(res.status, JSON.stringify(bad)).toBe(422);
    }
    const cleared = await app.request("/api/v1/clusters/1", { method: "PATCH", headers: admin, body: JSON.stringify({ registries: null }) });
    expect(((await cleared.json()) as { registries: unknown }).registries).toBeNull();
  });

  it("node config 200 → registries_yaml that parses back to the data, the images URL for the machine's arch, the syslog target", async () => {
    const { app, db, deps } = withFiles([`k3s/${version}/k3s-airgap-images-arm64.tar.gz`]);
    await app.request("/api/v1/clusters/1", { method: "PATCH", headers: admin, body: JSON.stringify({ registries }) });
    const m = addApproved(db, { n: 2, clusterId: 1, now: 1 });
    db.update(machines).set({ arch: "aarch64" }).where(eq(machines.id, m.id)).run();
    const answer = answerConfigRequest(deps, m);
    if (answer.kind !== "config") throw new Error(`expected a config, got ${answer.kind}`);
    expect(parse(answer.body.registries_yaml!)).toEqual(registries);
    expect(answer.body.install.airgap_images_url).toBe(`${testPublicUrl}/artifacts/k3s/${encodeURIComponent(version)}/k3s-airgap-images-arm64.tar.gz`);
    expect(answer.body.syslog).toBeNull();
    const withSyslog = makeTestApp({ env: { EDGEJOIN_SYSLOG_PORT: "5514" } });
    const m2 = addApproved(withSyslog.db, { n: 3, clusterId: 1, now: 1 });
    const a2 = answerConfigRequest(withSyslog.deps, m2);
    expect(a2.kind === "config" && [a2.body.syslog, a2.body.registries_yaml, a2.body.install.airgap_images_url]).toEqual(["10.77.0.1:5514", null, null]);
  });
});

describe("/boot.ipxe for a cluster whose installer files are missing", () => {
  it("→ a console message naming the missing file, never a kernel line; with the files → the installer", async () => {
    const identity = "mac=52:54:00:aa:bb:01&uuid=&serial=&arch=x86_64&platform=efi&manufacturer=QEMU&product=Standard";
    const missing = await (await withFiles(["ubuntu/casper/vmlinuz"]).app.request(`/boot.ipxe?${identity}`)).text();
    expect(missing).toContain("echo edgejoin: the installer of cluster default is missing");
    expect(missing).toContain("echo edgejoin has no ubuntu/casper/initrd in its artifacts folder.");
    expect(missing).not.toMatch(/^kernel /m);
    const all = withFiles(["ubuntu/casper/vmlinuz", "ubuntu/casper/initrd", "ubuntu/ubuntu-live-server-amd64.iso"]);
    expect(await (await all.app.request(`/boot.ipxe?${identity}`)).text()).toMatch(/^kernel http:\/\/10\.77\.0\.1:8080\/artifacts\/ubuntu\/casper\/vmlinuz /m);
  });
});
