/**
 * `/artifacts/` conditional requests: ETag and Last-Modified on every answer, 304 for a client
 * whose copy is current (If-None-Match, else If-Modified-Since), a changed file served again,
 * and If-Range resuming only the same file.
 */
import { utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeTestApp } from "../helpers/app.js";
import { testTempDir } from "../helpers/temp-dir.js";

const mtime = new Date("2026-11-20T08:00:00.000Z");

function setup() {
  const dir = testTempDir("artifacts-cond");
  const file = join(dir, "k3s");
  writeFileSync(file, "0123456789abcdef");
  utimesSync(file, mtime, mtime);
  const { app } = makeTestApp({ env: { EDGEJOIN_ARTIFACTS_DIR: dir }, transport: "http" });
  return { app, file };
}

describe("GET /artifacts/* conditional requests", () => {
  it("200 carries a strong ETag and Last-Modified; If-None-Match with it → 304 without a body, validators kept", async () => {
    const { app } = setup();
    const first = await app.request("/artifacts/k3s");
    const etag = first.headers.get("etag")!;
    expect(etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(first.headers.get("last-modified")).toBe("Fri, 20 Nov 2026 08:00:00 GMT");
    const again = await app.request("/artifacts/k3s", { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe("");
    expect(again.headers.get("etag")).toBe(etag);
    // A list, a weak form of the same tag and `*` all match (RFC 9110 weak comparison).
    for (const h of [`"nope", ${etag}`, `W/${etag}`, "*"]) expect((await app.request("/artifacts/k3s", { headers: { "if-none-match": h } })).status).toBe(304);
    expect((await app.request("/artifacts/k3s", { method: "HEAD", headers: { "if-none-match": etag } })).status).toBe(304);
  });

  it("If-Modified-Since at or after the file's time → 304; before it, or unparseable → 200", async () => {
    const { app } = setup();
    const ims = (v: string) => app.request("/artifacts/k3s", { headers: { "if-modified-since": v } });
    expect((await ims("Fri, 20 Nov 2026 08:00:00 GMT")).status).toBe(304);
    expect((await ims("Sat, 21 Nov 2026 08:00:00 GMT")).status).toBe(304);
    const older = await ims("Thu, 19 Nov 2026 08:00:00 GMT");
    expect(older.status).toBe(200);
    expect(await older.text()).toBe("0123456789abcdef");
    expect((await ims("yesterday")).status).toBe(200);
  });

  it("If-None-Match wins over If-Modified-Since: a stale tag → 200 even with a recent date", async () => {
    const { app } = setup();
    const res = await app.request("/artifacts/k3s", { headers: { "if-none-match": '"stale"', "if-modified-since": "Sat, 21 Nov 2026 08:00:00 GMT" } });
    expect(res.status).toBe(200);
  });

  it("a replaced file → a new ETag, and the old one no longer gets 304", async () => {
    const { app, file } = setup();
    const old = (await app.request("/artifacts/k3s")).headers.get("etag")!;
    writeFileSync(file, "a newer, longer k3s binary");
    const res = await app.request("/artifacts/k3s", { headers: { "if-none-match": old } });
    expect(res.status).toBe(200);
    expect(res.headers.get("etag")).not.toBe(old);
    expect(await res.text()).toBe("a newer, longer k3s binary");
  });

  it("If-Range with the current ETag → 206 range; with an old one → the whole file, 200", async () => {
    const { app, file } = setup();
    const etag = (await app.request("/artifacts/k3s")).headers.get("etag")!;
    const resumed = await app.request("/artifacts/k3s", { headers: { range: "bytes=10-", "if-range": etag } });
    expect(resumed.status).toBe(206);
    expect(await resumed.text()).toBe("abcdef");
    writeFileSync(file, "fedcba9876543210");
    utimesSync(file, new Date("2026-11-21T08:00:00Z"), new Date("2026-11-21T08:00:00Z"));
    const changed = await app.request("/artifacts/k3s", { headers: { range: "bytes=10-", "if-range": etag } });
    expect(changed.status).toBe(200);
    expect(await changed.text()).toBe("fedcba9876543210");
  });
});
