/** /healthz and /readyz through app.request: ready means the database takes writes and main's listeners are bound. */
import Database from "better-sqlite3";
import { drizzle } from "drizzle-orm/better-sqlite3";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openDb, type Db } from "../../db/client.js";
import * as schema from "../../db/schema.js";
import { makeTestApp } from "../helpers/app.js";
import { testTempDir } from "../helpers/temp-dir.js";

/** A test app on a database file (not :memory:), so a second connection can see it. */
function appOnFile() {
  const file = join(testTempDir("readyz"), "edgejoin.db");
  const t = makeTestApp({ db: openDb(file) });
  // Keep a refused check short; the server's own busy timeout is 5 s.
  t.db.$client.pragma("busy_timeout = 50");
  return { ...t, file };
}

async function readyz(t: ReturnType<typeof makeTestApp>) {
  const res = await t.app.request("/readyz");
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("health endpoints", () => {
  it("/healthz → 200 {status: ok}", async () => {
    const t = makeTestApp();
    const res = await t.app.request("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("/readyz with a writable database and no readiness callback (no listeners of its own) → 200 {status: ready}", async () => {
    const t = appOnFile();
    expect(t.deps.readiness).toBeUndefined();
    expect(await readyz(t)).toEqual({ status: 200, body: { status: "ready" } });
  });

  it("/readyz while main says TFTP is not bound → 503 not_ready with that reason; ready once it is", async () => {
    const t = makeTestApp();
    let bound = false;
    t.deps.readiness = () => (bound ? { ready: true } : { ready: false, reason: "TFTP is not bound yet" });
    const refused = await readyz(t);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: "not_ready", message: "TFTP is not bound yet" });
    expect(typeof refused.body.requestId).toBe("string");
    bound = true;
    expect(await readyz(t)).toEqual({ status: 200, body: { status: "ready" } });
  });

  it("/readyz on a read-only database → 503 saying it does not take writes", async () => {
    const t = appOnFile();
    t.deps.db = drizzle(new Database(t.file, { readonly: true }), { schema }) as Db;
    const r = await readyz(t);
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ error: "not_ready", message: expect.stringMatching(/^the database does not take writes: .*readonly/) });
  });

  it("/readyz while another process holds the write lock → 503; the lock released → 200, and nothing was left open", async () => {
    const t = appOnFile();
    const other = new Database(t.file);
    other.exec("BEGIN IMMEDIATE");
    try {
      const r = await readyz(t);
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ error: "not_ready", message: expect.stringMatching(/database is locked/) });
      expect(t.db.$client.inTransaction).toBe(false);
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
    expect((await readyz(t)).status).toBe(200);
    expect(t.db.$client.inTransaction).toBe(false);
    // The check changed nothing: the schema version is the one migrations left.
    expect(t.db.$client.pragma("user_version", { simple: true })).toBe(new Database(t.file, { readonly: true }).pragma("user_version", { simple: true }));
  });

  it("/readyz with the database closed → 503, never 500", async () => {
    const t = appOnFile();
    t.db.$client.close();
    const r = await readyz(t);
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ error: "not_ready", message: expect.stringMatching(/^the database does not take writes: /) });
  });
});
