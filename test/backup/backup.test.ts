/** POST /api/v1/backup: the whole database as one SQLite file, made while the app keeps serving. */
import { describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { auditEvents } from "../../db/schema.js";
import { openDb } from "../../db/client.js";
import { makeTestApp } from "../helpers/app.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { admin, bootQuery } from "../enrollment/fixtures.js";

describe("database backup", () => {
  it("POST /api/v1/backup → a SQLite file with every table, integrity ok, no temp file left; audited under the token", async () => {
    const dir = testTempDir("backup");
    const temps = () => readdirSync(tmpdir()).filter((n) => n.startsWith("edgejoin-backup-"));
    const before = temps();
    const t = makeTestApp({ db: openDb(join(dir, "edgejoin.db")) });
    expect((await t.app.request(`/boot.ipxe?${bootQuery}`)).status).toBe(200);
    const res = await t.app.request("/api/v1/backup", { method: "POST", headers: admin });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/vnd.sqlite3");
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.length).toBe(Number(res.headers.get("content-length")));
    expect(bytes.subarray(0, 16).toString("latin1")).toBe("SQLite format 3\0");
    const copy = join(dir, "copy.db");
    writeFileSync(copy, bytes);
    const db = new Database(copy, { readonly: true });
    try {
      expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
      expect(db.prepare("select mac from machines").all()).toEqual([{ mac: "52:54:00:12:34:56" }]);
    } finally {
      db.close();
    }
    expect(t.db.select().from(auditEvents).where(eq(auditEvents.action, "database.backup")).get()).toMatchObject({ actor: "admin:env" });
    // The copy made for streaming goes once it was sent.
    for (let i = 0; i < 50 && temps().length > before.length; i++) await new Promise((r) => setTimeout(r, 20));
    expect(temps()).toEqual(before);
  });

  it("without an admin token → 401, nothing copied", async () => {
    const t = makeTestApp();
    expect((await t.app.request("/api/v1/backup", { method: "POST" })).status).toBe(401);
    expect(t.db.select().from(auditEvents).where(eq(auditEvents.action, "database.backup")).all()).toHaveLength(0);
  });
});
