/** Opens edgejoin's SQLite database (WAL), applies the committed migrations, returns drizzle. */
import Database from "better-sqlite3";
import { drizzle, type BetterSQLite3Database } from "drizzle-orm/better-sqlite3";
import { migrate } from "drizzle-orm/better-sqlite3/migrator";
import { chmodSync, closeSync, openSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as schema from "./schema.js";

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database };

/** Resolved from this module, not the working directory, so tests and the CLI find them too. */
const migrationsFolder = fileURLToPath(new URL("./migrations", import.meta.url));

/** Open (or create) the database at `file` (`:memory:` for tests) and bring it up to date. */
export function openDb(file: string): Db {
  if (file !== ":memory:") {
    // The file holds k3s cluster secrets: owner-only, also when it already existed (SQLite
    // gives its -wal and -shm files the same mode).
    closeSync(openSync(file, "a", 0o600));
    chmodSync(file, 0o600);
  }
  const sqlite = new Database(file);
  sqlite.pragma("journal_mode = WAL");
  // NORMAL is durable across process crashes in WAL mode; only an OS crash can lose the tail.
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("foreign_keys = ON");
  // Another process (a second server by mistake, a backup tool) may hold the write lock briefly.
  sqlite.pragma("busy_timeout = 5000");
  const db = drizzle(sqlite, { schema }) as Db;
  migrate(db, { migrationsFolder });
  return db;
}

/** A transaction handle, usable wherever a query runs inside `db.transaction`. */
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
/** Either the database or a transaction on it: store functions accept both. */
export type Queryable = Db | Tx;
