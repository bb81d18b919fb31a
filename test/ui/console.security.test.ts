/**
 * The console's gates through app.request: sign-in with a token in a form (never a URL), a
 * session cookie with the right attributes and only its hash stored, CSRF on every post, CSP
 * without inline scripts, and escaping of machine-supplied text.
 */
import { describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import { recordSighting } from "../../server/store/machines.js";
import { makeTestApp, testAdminToken } from "../helpers/app.js";

type App = ReturnType<typeof makeTestApp>["app"];

const cookiesOf = (res: Response) => res.headers.getSetCookie().map((c) => c.split(";")[0]!);
const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const formHeaders = (cookie: string) => ({ "content-type": "application/x-www-form-urlencoded", cookie });

async function signIn(app: App, token = testAdminToken) {
  const page = await app.request("/ui/login");
  const signInCookie = cookiesOf(page).join("; ");
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1]!;
  const res = await app.request("/ui/login", { method: "POST", headers: formHeaders(signInCookie), body: form({ _csrf: csrf, token }) });
  return { res, cookie: cookiesOf(res).find((c) => c.startsWith("edgejoin_session=")) };
}

async function csrfOf(app: App, cookie: string) {
  const html = await (await app.request("/ui", { headers: { cookie } })).text();
  return /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
}

describe("console sign-in and CSRF", () => {
  it("GET /ui without a session → 303 to the sign-in page, whose CSP allows no inline script", async () => {
    const { app } = makeTestApp();
    const res = await app.request("/ui");
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/ui/login");
    const login = await app.request("/ui/login");
    const csp = login.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(await login.text()).toContain('type="password"');
  });

  it("the right token → session cookie HttpOnly, SameSite=Strict, with an expiry; only the id's hash is stored; audited as admin:env", async () => {
    const { app, db } = makeTestApp();
    const { res, cookie } = await signIn(app);
    expect(res.status).toBe(303);
    const raw = res.headers.getSetCookie().find((c) => c.startsWith("edgejoin_session="))!;
    expect(raw).toMatch(/HttpOnly/);
    expect(raw).toMatch(/SameSite=Strict/);
    expect(raw).toMatch(/Max-Age=43200/);
    expect(raw).not.toMatch(/Secure/); // plain http here; https sets Secure
    const id = cookie!.split("=")[1]!;
    const rows = db.all<{ id_sha256: string; token_name: string }>(sql`select id_sha256, token_name from ui_sessions`);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.id_sha256).not.toContain(id);
    expect(rows[0]!.token_name).toBe("env");
    expect((await app.request("/ui", { headers: { cookie: cookie! } })).status).toBe(200);
  });

  it("over https the session cookie is Secure", async () => {
    const { app } = makeTestApp();
    const page = await app.request("https://edgejoin.test/ui/login");
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1]!;
    const res = await app.request("https://edgejoin.test/ui/login", {
      method: "POST",
      headers: formHeaders(cookiesOf(page).join("; ")),
      body: form({ _csrf: csrf, token: testAdminToken }),
    });
    expect(res.headers.getSetCookie().find((c) => c.startsWith("edgejoin_session="))).toMatch(/Secure/);
  });

  it("a wrong token → 401, no session, audited admin.sign_in_failed without the token", async () => {
    const { app, db } = makeTestApp();
    const { res, cookie } = await signIn(app, "wrong-token-wrong-token-wrong");
    expect(res.status).toBe(401);
    expect(cookie).toBeUndefined();
    const audit = db.all<{ action: string; detail: string }>(sql`select action, detail from audit_events where action = 'admin.sign_in_failed'`);
    expect(audit).toHaveLength(1);
    expect(JSON.stringify(audit)).not.toContain("wrong-token");
  });

  it("a post without the CSRF token, or with another session's, → 403 and nothing changes", async () => {
    const { app, db } = makeTestApp();
    const { machine } = recordSighting(db, { mac: "52:54:00:00:00:01" }, { now: 1, ip: "10.0.0.5", via: "boot" });
    db.run(sql`update machines set state = 'pending' where id = ${machine.id}`);
    const a = (await signIn(app)).cookie!;
    const b = (await signIn(app)).cookie!;
    const csrfB = await csrfOf(app, b);
    const without = await app.request(`/ui/machines/${machine.id}/reject`, { method: "POST", headers: formHeaders(a), body: form({}) });
    expect(without.status).toBe(403);
    const foreign = await app.request(`/ui/machines/${machine.id}/reject`, { method: "POST", headers: formHeaders(a), body: form({ _csrf: csrfB }) });
    expect(foreign.status).toBe(403);
    expect(db.get<{ state: string }>(sql`select state from machines where id = ${machine.id}`)!.state).toBe("pending");
    const ok = await app.request(`/ui/machines/${machine.id}/reject`, { method: "POST", headers: formHeaders(a), body: form({ _csrf: await csrfOf(app, a) }) });
    expect(ok.status).toBe(303);
    expect(db.get<{ state: string }>(sql`select state from machines where id = ${machine.id}`)!.state).toBe("rejected");
    const actor = db.get<{ actor: string }>(sql`select actor from audit_events where action = 'machine.rejected'`)!.actor;
    expect(actor).toBe("admin:env");
  });

  it("a named token's session acts as admin:<name>; revoking the token ends its sessions", async () => {
    const { app, db } = makeTestApp();
    const admin = { authorization: `Bearer ${testAdminToken}`, "content-type": "application/json" };
    const made = await app.request("/api/v1/tokens", { method: "POST", headers: admin, body: JSON.stringify({ name: "alice" }) });
    expect(made.status).toBe(201);
    const alice = ((await made.json()) as { token: string }).token;
    const { machine } = recordSighting(db, { mac: "52:54:00:00:00:03" }, { now: 1, ip: "10.0.0.7", via: "boot" });
    db.run(sql`update machines set state = 'pending' where id = ${machine.id}`);
    const cookie = (await signIn(app, alice)).cookie!;
    const ok = await app.request(`/ui/machines/${machine.id}/reject`, {
      method: "POST",
      headers: formHeaders(cookie),
      body: form({ _csrf: await csrfOf(app, cookie) }),
    });
    expect(ok.status).toBe(303);
    expect(db.get<{ actor: string }>(sql`select actor from audit_events where action = 'machine.rejected'`)!.actor).toBe("admin:alice");
    expect((await app.request("/api/v1/tokens/alice", { method: "DELETE", headers: admin })).status).toBeLessThan(300);
    expect((await app.request("/ui", { headers: { cookie } })).status).toBe(303);
  });

  it("sign-out ends the session server-side: the old cookie is sent to sign in again", async () => {
    const { app } = makeTestApp();
    const cookie = (await signIn(app)).cookie!;
    const out = await app.request("/ui/logout", { method: "POST", headers: formHeaders(cookie), body: form({ _csrf: await csrfOf(app, cookie) }) });
    expect(out.status).toBe(303);
    expect((await app.request("/ui", { headers: { cookie } })).status).toBe(303);
  });

  it("a serial with markup is shown as text, not HTML", async () => {
    const { app, db } = makeTestApp();
    const { machine } = recordSighting(db, { mac: "52:54:00:00:00:02" }, { now: 1, ip: "10.0.0.6", via: "boot" });
    db.run(sql`update machines set state = 'pending', serial = ${"<script>alert(1)</script>"} where id = ${machine.id}`);
    const cookie = (await signIn(app)).cookie!;
    const html = await (await app.request("/ui", { headers: { cookie } })).text();
    expect(html).not.toContain("<script>alert(1)</script>");
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
  });
});
