import { describe, expect, it } from "vitest";
import { chmodSync, readdirSync, statSync } from "node:fs";
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
  /** 600 commits of 8 KiB each (~5 MiB of WAL frames), paced so a checkpoint thread gets turns. */
  const writeMany = async (db: ReturnType<typeof openDb>, file: string) => {
    db.$client.exec("create table if not exists scratch (id integer primary key, body blob)");
    const insert = db.$client.prepare("insert into scratch (body) values (?)");
    let largest = 0;
    for (let batch = 0; batch < 30; batch++) {
      for (let i = 0; i < 20; i++) insert.run(Buffer.alloc(8192, i));
      largest = Math.max(largest, walBytes(file));
      await sleep(15);
    }
    return largest;
  };

  it("the server's connection stops checkpointing; the thread keeps the WAL from growing; stop hands checkpoints back", async () => {
    const file = join(testTempDir("db"), "edgejoin.db");
    const db = openDb(file);
    const checkpointer = startCheckpointer(db, file, { intervalMs: 5 });
    expect(db.$client.pragma("wal_autocheckpoint", { simple: true })).toBe(0);
    const largest = await writeMany(db, file);
    await checkpointer.stop();
    expect(db.$client.pragma("wal_autocheckpoint", { simple: true })).toBe(1000);
    // Without any checkpoint the WAL would hold all ~5 MiB; the thread lets writers restart it.
    expect(largest).toBeLessThan(2 * 2 ** 20);
    const { n } = db.$client.prepare("select count(*) as n from scratch").get() as { n: number };
    expect(n).toBe(600);
    db.$client.close();
  });

  it("no checkpoints at all (the control) → the same writes grow the WAL past 4 MiB", async () => {
    const file = join(testTempDir("db"), "edgejoin.db");
    const db = openDb(file);
    db.$client.pragma("wal_autocheckpoint = 0");
    expect(await writeMany(db, file)).toBeGreaterThan(4 * 2 ** 20);
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
