/** Named admin tokens: created once, stored hashed, revoked at once, named in every audit entry. */
import { describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { eq } from "drizzle-orm";
import { migrate } from "drizzle-orm/better-sqlite3/migrator";
import { drizzle } from "drizzle-orm/better-sqlite3";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { adminTokens, auditEvents, settings } from "../../db/schema.js";
import * as schema from "../../db/schema.js";
import { openDb } from "../../db/client.js";
import { hashAdminToken, hasAdminTokens, resetInitialToken, storeInitialToken } from "../../server/store/admin-token.js";
import { makeTestApp, testAdminToken } from "../helpers/app.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { admin, discoverAndEnroll, postJson } from "../enrollment/fixtures.js";

type T = ReturnType<typeof makeTestApp>;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function createToken(t: T, name: string, as: Record<string, string> = admin) {
  const res = await postJson(t, "/api/v1/tokens", { name }, as);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("named admin tokens", () => {
  it("POST /api/v1/tokens → the token once (201); only its SHA-256 is stored; it works at once", async () => {
    const t = makeTestApp();
    const { status, body } = await createToken(t, "ci-bot");
    expect(status).toBe(201);
    expect(body).toMatchObject({ name: "ci-bot", created_by: "admin:env", last_used_at: null });
    const token = body.token as string;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const row = t.db.select().from(adminTokens).where(eq(adminTokens.name, "ci-bot")).get()!;
    expect(row.sha256).toBe(hashAdminToken(token).toString("hex"));
    expect(JSON.stringify(t.db.$client.prepare("select * from admin_tokens").all())).not.toContain(token);
    expect((await t.app.request("/api/v1/nodes", { headers: bearer(token) })).status).toBe(200);

    const list = (await (await t.app.request("/api/v1/tokens", { headers: bearer(token) })).json()) as Record<string, unknown>;
    expect(list).toEqual({
      tokens: [{ name: "ci-bot", created_at: "2026-11-25T12:00:00.000Z", created_by: "admin:env", last_used_at: "2026-11-25T12:00:00.000Z" }],
      next_cursor: null,
    });
    expect(JSON.stringify(list)).not.toContain(token);
  });

  it("every audit entry names the token: approve with a named token → actor admin:<name>, approved_by on the node", async () => {
    const t = makeTestApp();
    const { body } = await createToken(t, "alice");
    const { node_id } = await discoverAndEnroll(t);
    const res = await t.app.request(`/api/v1/nodes/${node_id}/approve`, { method: "POST", headers: bearer(body.token as string) });
    expect(res.status).toBe(200);
    const approved = t.db.select().from(auditEvents).where(eq(auditEvents.action, "machine.approved")).get();
    expect(approved?.actor).toBe("admin:alice");
    const made = t.db.select().from(auditEvents).where(eq(auditEvents.action, "admin_token.created")).get();
    expect(made).toMatchObject({ actor: "admin:env", detail: { name: "alice" } });
  });

  it("DELETE /api/v1/tokens/:name → the next request with it is 401; audited", async () => {
    const t = makeTestApp();
    const { body } = await createToken(t, "temp");
    const token = body.token as string;
    const del = await t.app.request("/api/v1/tokens/temp", { method: "DELETE", headers: bearer(token) });
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ name: "temp", revoked: true });
    expect((await t.app.request("/api/v1/nodes", { headers: bearer(token) })).status).toBe(401);
    const revoked = t.db.select().from(auditEvents).where(eq(auditEvents.action, "admin_token.revoked")).get();
    expect(revoked).toMatchObject({ actor: "admin:temp", detail: { name: "temp" } });
  });

  it("paginates by name: limit and cursor, next_cursor null on the last page", async () => {
    const t = makeTestApp();
    for (const n of ["a", "b", "c"]) expect((await createToken(t, n)).status).toBe(201);
    const p1 = (await (await t.app.request("/api/v1/tokens?limit=2", { headers: admin })).json()) as { tokens: { name: string }[]; next_cursor: string };
    expect(p1.tokens.map((x) => x.name)).toEqual(["a", "b"]);
    expect(p1.next_cursor).toBe("b");
    const p2 = (await (await t.app.request(`/api/v1/tokens?limit=2&cursor=${p1.next_cursor}`, { headers: admin })).json()) as {
      tokens: { name: string }[];
      next_cursor: null;
    };
    expect(p2).toMatchObject({ tokens: [{ name: "c" }], next_cursor: null });
  });
});

describe("named admin tokens: refusals", () => {
  it("duplicate name → 409; env → 409; bad name → 422; unknown → 404; no token → 401", async () => {
    const t = makeTestApp();
    expect((await createToken(t, "ops")).status).toBe(201);
    expect(await createToken(t, "ops")).toMatchObject({ status: 409, body: { error: "conflict" } });
    expect(await createToken(t, "env")).toMatchObject({ status: 409, body: { error: "conflict" } });
    expect(await createToken(t, "Bad Name")).toMatchObject({ status: 422, body: { error: "validation_failed" } });
    expect((await t.app.request("/api/v1/tokens/nobody", { method: "DELETE", headers: admin })).status).toBe(404);
    expect((await t.app.request("/api/v1/tokens/env", { method: "DELETE", headers: admin })).status).toBe(409);
    expect((await t.app.request("/api/v1/tokens")).status).toBe(401);
    expect((await createToken(t, "x", bearer("not-a-token-not-a-token-00"))).status).toBe(401);
  });

  it("no EDGEJOIN_ADMIN_TOKEN and no stored token → every admin request is 401", async () => {
    const t = makeTestApp({ env: { EDGEJOIN_ADMIN_TOKEN: "" } });
    expect((await t.app.request("/api/v1/nodes", { headers: bearer(testAdminToken) })).status).toBe(401);
  });
});

describe("the initial token", () => {
  it("storeInitialToken → stored as `initial` once; a second start (or a racing process) stores nothing", () => {
    const db = openDb(":memory:");
    expect(hasAdminTokens(db)).toBe(false);
    expect(storeInitialToken(db, "first-token-first-token-first", 1)).toBe(true);
    expect(storeInitialToken(db, "other-token-other-token-other", 2)).toBe(false);
    const rows = db.select().from(adminTokens).all();
    expect(rows).toEqual([
      { name: "initial", sha256: hashAdminToken("first-token-first-token-first").toString("hex"), createdAt: 1, createdBy: "system", lastUsedAt: null },
    ]);
  });

  it("resetInitialToken → a new `initial`, the old one dead, other tokens kept", async () => {
    const t = makeTestApp();
    storeInitialToken(t.db, "old-initial-old-initial-old-00", 1);
    const { body } = await createToken(t, "keep");
    const fresh = resetInitialToken(t.db, 5);
    expect(fresh).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await t.app.request("/api/v1/nodes", { headers: bearer("old-initial-old-initial-old-00") })).status).toBe(401);
    expect((await t.app.request("/api/v1/nodes", { headers: bearer(fresh) })).status).toBe(200);
    expect((await t.app.request("/api/v1/nodes", { headers: bearer(body.token as string) })).status).toBe(200);
    expect(t.db.select().from(auditEvents).where(eq(auditEvents.action, "admin_token.reset")).get()).toMatchObject({ actor: "local" });
  });

  it("a database from before named tokens → its stored admin token hash becomes `initial`", () => {
    const migrations = fileURLToPath(new URL("../../db/migrations", import.meta.url));
    const journal = JSON.parse(readFileSync(join(migrations, "meta/_journal.json"), "utf8")) as { entries: { tag: string }[] };
    // The migrations before named tokens, in a folder of their own: an older edgejoin's database.
    const before = journal.entries.filter((e) => e.tag < "0003");
    const dir = testTempDir("migrate");
    mkdirSync(join(dir, "meta"));
    for (const e of before) cpSync(join(migrations, `${e.tag}.sql`), join(dir, `${e.tag}.sql`));
    writeFileSync(join(dir, "meta/_journal.json"), JSON.stringify({ ...journal, entries: before }));
    const db = drizzle(new Database(":memory:"), { schema });
    migrate(db, { migrationsFolder: dir });
    const hash = hashAdminToken("pre-upgrade-token-pre-upgrade").toString("hex");
    db.insert(settings).values({ key: "admin_token_sha256", value: hash }).run();
    migrate(db, { migrationsFolder: migrations });
    expect(db.select().from(adminTokens).all()).toMatchObject([{ name: "initial", sha256: hash, createdBy: "system" }]);
    expect(db.select().from(settings).all()).toEqual([]);
  });
});
