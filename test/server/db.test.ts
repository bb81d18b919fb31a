import { describe, expect, it } from "vitest";
import { chmodSync, readdirSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { startCheckpointer } from "../../db/checkpointer.js";
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

describe("startCheckpointer", () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const walBytes = (file: string) => statSync(`${file}-wal`).size;
  /** The WAL header's salt-1: SQLite changes it each time a writer restarts the WAL from its start. */
  const walSalt = (file: string) => readFileSync(`${file}-wal`).readUInt32BE(16);
  /** 300 commits of 16 KiB each: ~5 MiB of WAL frames. */
  const writeMany = (db: ReturnType<typeof openDb>) => {
    db.$client.exec("create table if not exists scratch (id integer primary key, body blob)");
    const insert = db.$client.prepare("insert into scratch (body) values (?)");
    for (let i = 0; i < 300; i++) insert.run(Buffer.alloc(16_384, i));
  };
  /** Small commits for up to `ms` until the WAL restarts; whether it did. */
  const restartsWithin = async (db: ReturnType<typeof openDb>, file: string, ms: number) => {
    const before = walSalt(file);
    for (const until = Date.now() + ms; Date.now() < until; ) {
      db.$client.prepare("insert into scratch (body) values (?)").run(Buffer.alloc(16));
      if (walSalt(file) !== before) return true;
      await sleep(20);
    }
    return false;
  };

  it("the server's connection stops checkpointing; the thread catches up, so writers reuse the WAL instead of growing it; stop hands checkpoints back", async () => {
    const file = join(testTempDir("db"), "edgejoin.db");
    const db = openDb(file);
    const checkpointer = startCheckpointer(db, file, { intervalMs: 5 });
    expect(db.$client.pragma("wal_autocheckpoint", { simple: true })).toBe(0);
    writeMany(db);
    const afterFirst = walBytes(file);
    expect(await restartsWithin(db, file, 5_000)).toBe(true);
    writeMany(db);
    // Without a checkpoint the second 5 MiB would be appended; restarted, they overwrite the first.
    expect(walBytes(file)).toBeLessThan(afterFirst * 1.5);
    await checkpointer.stop();
    expect(db.$client.pragma("wal_autocheckpoint", { simple: true })).toBe(1000);
    const { n } = db.$client.prepare("select count(*) as n from scratch").get() as { n: number };
    expect(n).toBeGreaterThan(600);
    db.$client.close();
  });

  it("no checkpoints at all (the control) → the WAL never restarts and the same writes double it", async () => {
    const file = join(testTempDir("db"), "edgejoin.db");
    const db = openDb(file);
    db.$client.pragma("wal_autocheckpoint = 0");
    writeMany(db);
    const afterFirst = walBytes(file);
    expect(await restartsWithin(db, file, 500)).toBe(false);
    writeMany(db);
    expect(walBytes(file)).toBeGreaterThan(afterFirst * 1.8);
    db.$client.close();
  });

  it("a thread that cannot open the database → reported, and the server's connection checkpoints itself again", async () => {
    const file = join(testTempDir("db"), "edgejoin.db");
    const db = openDb(file);
    const errors: Error[] = [];
    const checkpointer = startCheckpointer(db, join(testTempDir("db"), "missing", "edgejoin.db"), { onError: (err) => errors.push(err) });
    for (let i = 0; i < 100 && errors.length === 0; i++) await sleep(20);
    expect(errors[0]?.message).toMatch(/directory does not exist|unable to open/i);
    expect(db.$client.pragma("wal_autocheckpoint", { simple: true })).toBe(1000);
    await checkpointer.stop();
    db.$client.close();
  });
});
