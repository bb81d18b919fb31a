import { describe, expect, it } from "vitest";
import { chmodSync, readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { openDb } from "../../db/client.js";
import { testTempDir } from "../helpers/temp-dir.js";

describe("openDb", () => {
  it("new file → owner-only mode, WAL, every migration applied", () => {
    const file = join(testTempDir("db"), "edgejoin.db");
    const db = openDb(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(db.$client.pragma("journal_mode", { simple: true })).toBe("wal");
    const tables = db.$client.prepare("select name from sqlite_master where type = 'table'").all() as { name: string }[];
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining(["machines", "clusters", "audit_events", "node_events", "signing_keys", "used_tokens", "settings"]),
    );
    db.$client.close();
  });

  it("an existing world-readable file (it holds cluster secrets) → made owner-only", () => {
    const dir = testTempDir("db");
    const file = join(dir, "edgejoin.db");
    openDb(file).$client.close();
    chmodSync(file, 0o644);
    const db = openDb(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    db.$client.close();
  });

  it("opening twice → each committed migration recorded once, none applied again", () => {
    const file = join(testTempDir("db"), "edgejoin.db");
    const count = () => {
      const db = openDb(file);
      const { n } = db.$client.prepare("select count(*) as n from __drizzle_migrations").get() as { n: number };
      db.$client.close();
      return n;
    };
    const committed = readdirSync(fileURLToPath(new URL("../../db/migrations", import.meta.url))).filter((f) => f.endsWith(".sql"));
    expect(count()).toBe(committed.length);
    expect(count()).toBe(committed.length);
  });
});
