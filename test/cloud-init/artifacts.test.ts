import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clusters } from "../../db/schema.js";
import { makeTestApp } from "../helpers/app.js";
import { tempDir } from "../helpers/temp-dir.js";

let root: string;
let removeRoot: () => void;
let artifacts: string;
beforeEach(() => {
  ({ dir: root, remove: removeRoot } = tempDir("artifacts"));
  artifacts = join(root, "artifacts");
  mkdirSync(join(artifacts, "ubuntu/casper"), { recursive: true });
  writeFileSync(join(artifacts, "ubuntu/casper/vmlinuz"), "0123456789abcdef");
  writeFileSync(join(root, "secret"), "outside");
  symlinkSync(join(root, "secret"), join(artifacts, "escape"));
});
afterEach(() => removeRoot());

const app = () => makeTestApp({ env: { EDGEJOIN_ARTIFACTS_DIR: artifacts } });

describe("GET /artifacts/*", () => {
  it("a file → 200 with its bytes; HEAD → headers only", async () => {
    const { app: a } = app();
    const res = await a.request("/artifacts/ubuntu/casper/vmlinuz");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe("16");
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    expect(await res.text()).toBe("0123456789abcdef");
    const head = await a.request("/artifacts/ubuntu/casper/vmlinuz", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("16");
    expect(await head.text()).toBe("");
  });

  it.each([
    ["bytes=4-7", 206, "4567", "bytes 4-7/16"],
    ["bytes=10-", 206, "abcdef", "bytes 10-15/16"],
    ["bytes=-3", 206, "def", "bytes 13-15/16"],
    ["bytes=12-99", 206, "cdef", "bytes 12-15/16"],
    ["bytes=0-1,4-5", 200, "0123456789abcdef", null],
  ])("Range %s → %i", async (range, status, body, contentRange) => {
    const res = await app().app.request("/artifacts/ubuntu/casper/vmlinuz", { headers: { range } });
    expect(res.status).toBe(status);
    expect(await res.text()).toBe(body);
    expect(res.headers.get("content-range")).toBe(contentRange);
  });

  it("a range past the end → 416 with the size", async () => {
    const res = await app().app.request("/artifacts/ubuntu/casper/vmlinuz", { headers: { range: "bytes=16-" } });
    expect(res.status).toBe(416);
    expect(res.headers.get("content-range")).toBe("bytes */16");
  });

  it.each([
    ["/artifacts/missing.iso", 404],
    ["/artifacts/escape", 403],
    ["/artifacts/ubuntu", 403],
    ["/artifacts/..%2fsecret", 404],
    ["/artifacts/ubuntu/%2e%2e/%2e%2e/secret", 404],
    ["/artifacts/ubuntu%00/casper/vmlinuz", 404],
  ])("%s → %i, never a byte from outside", async (path, status) => {
    const res = await app().app.request(path);
    expect(res.status).toBe(status);
    expect(await res.text()).not.toContain("outside");
  });

  it("writes → not served", async () => {
    const res = await app().app.request("/artifacts/ubuntu/casper/vmlinuz", { method: "PUT", body: "x" });
    expect(res.status).toBe(404);
  });
});

describe("installer URLs in /boot.ipxe", () => {
  const identity = "mac=52%3A54%3A00%3A12%3A34%3A56&arch=x86_64&platform=efi";

  it("files present in the artifacts folder → served by edgejoin; absent ones → the cluster's mirror", async () => {
    const { app: a, db } = app();
    const cluster = db.select().from(clusters).get()!;
    db.update(clusters)
      .set({ installer: { ...cluster.installer, mirror_url: "http://mirror.example/ubuntu-24.04/" } })
      .run();
    const script = await (await a.request(`/boot.ipxe?${identity}`)).text();
    expect(script).toContain("kernel http://10.77.0.1:8080/artifacts/ubuntu/casper/vmlinuz ");
    expect(script).toContain("initrd --name initrd http://mirror.example/ubuntu-24.04/ubuntu/casper/initrd");
    expect(script).toContain("url=http://mirror.example/ubuntu-24.04/ubuntu/ubuntu-live-server-amd64.iso");
  });

  it("no mirror configured and the initrd missing → a console message naming the file, no kernel that would 404", async () => {
    const script = await (await app().app.request(`/boot.ipxe?${identity}`)).text();
    expect(script).toContain("echo edgejoin has no ubuntu/casper/initrd in its artifacts folder.");
    expect(script).not.toContain("kernel ");
  });
});
