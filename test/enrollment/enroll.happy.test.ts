import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { decodeJwt } from "jose";
import { auditEvents, machines, usedTokens } from "../../db/schema.js";
import { makeTestApp } from "../helpers/app.js";
import { admin, bootQuery, discoverAndEnroll, enroll, facts, getWith, mac, postJson, serial, tokenFor, uuid } from "./fixtures.js";

describe("POST /api/v1/enroll", () => {
  it("discovered machine with a valid token → 201 pending, node credential, jti spent, audit", async () => {
    const t = makeTestApp();
    await t.app.request(`/boot.ipxe?${bootQuery}`);
    const { token, jti } = await tokenFor(t);
    const res = await enroll(t, token);
    expect(res.status).toBe(201);
    const body = (await res.json()) as { node_id: number; state: string; credential: string };
    const [m] = t.db.select().from(machines).all();
    expect(body).toMatchObject({ node_id: m!.id, state: "pending" });
    expect(decodeJwt(body.credential)).toMatchObject({ aud: "edgejoin:node", sub: String(m!.id), gen: 0 });
    expect(m).toMatchObject({ mac, uuid, serial, state: "pending", clusterId: 1, hostname: null });
    expect(m!.facts).toMatchObject({ ...facts, hostname: "ubuntu", ip: "10.77.0.50" });
    expect(t.db.select().from(usedTokens).where(eq(usedTokens.jti, jti)).all()).toHaveLength(1);
    const audit = t.db.select().from(auditEvents).where(eq(auditEvents.action, "machine.enrolled")).all();
    expect(audit).toHaveLength(1);
    expect(audit[0]!.detail).toMatchObject({ from: "discovered", to: "pending" });
    expect(JSON.stringify(t.db.select().from(auditEvents).all())).not.toContain(token);
  });

  it("machine never seen before → created pending in the token's cluster", async () => {
    const t = makeTestApp();
    const { token } = await tokenFor(t);
    const res = await enroll(t, token);
    expect(res.status).toBe(201);
    const [m] = t.db.select().from(machines).all();
    expect(m).toMatchObject({ mac, state: "pending", clusterId: 1, product: "NUC13ANHi5", arch: "x86_64" });
  });

  it("one enrollment per install: a second enroll of a pending machine → 409 already_enrolled, a conflict on the machine, nothing issued or changed", async () => {
    const t = makeTestApp();
    const first = await discoverAndEnroll(t);
    const before = t.db.select().from(machines).get()!;
    t.clock.advance(3_600_000);
    const { token } = await tokenFor(t);
    const res = await enroll(t, token, { facts: { product: "Evil" } });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: "already_enrolled" });
    const after = t.db.select().from(machines).get()!;
    expect(after).toMatchObject({ state: "pending", credentialGeneration: before.credentialGeneration, product: before.product });
    expect(after.conflicts).toEqual([{ at: t.clock(), source_ip: null, facts: { product: "Evil" } }]);
    expect(t.db.select().from(machines).all()).toHaveLength(1);
    const waiting = await t.app.request("/api/v1/node/config", { headers: { authorization: `Bearer ${first.credential}` } });
    expect(waiting.status).toBe(202);
    expect(await waiting.json()).toMatchObject({ reason: "conflict" });
  });

  it.each(["approved", "provisioning", "joined"] as const)(
    "enroll of a %s machine in the same install → 409 already_enrolled, state, seat and credential kept",
    async (state) => {
      const t = makeTestApp();
      const first = await discoverAndEnroll(t);
      t.db.update(machines).set({ state, role: "agent", roleAssignedAt: t.clock() }).where(eq(machines.id, first.node_id)).run();
      const { token } = await tokenFor(t);
      const res = await enroll(t, token);
      expect(res.status).toBe(409);
      expect(t.db.select().from(machines).get()).toMatchObject({ state, role: "agent", credentialGeneration: 0 });
      expect(t.db.select().from(auditEvents).where(eq(auditEvents.action, "enroll.conflict")).all()).toHaveLength(1);
    },
  );

  it("re-enroll of a failed machine (it installed again) → same node, pending, seat kept for an agent, earlier credential revoked", async () => {
    const t = makeTestApp();
    const first = await discoverAndEnroll(t);
    t.db.update(machines).set({ state: "failed", role: "agent", roleAssignedAt: t.clock() }).where(eq(machines.id, first.node_id)).run();
    t.clock.advance(3_600_000);
    const { token } = await tokenFor(t);
    const res = await enroll(t, token);
    expect(res.status).toBe(201);
    const again = (await res.json()) as { node_id: number; state: string; credential: string };
    expect(again).toMatchObject({ node_id: first.node_id, state: "pending" });
    expect(t.db.select().from(machines).get()).toMatchObject({ role: "agent", state: "pending" });
    const config = (credential: string) => t.app.request("/api/v1/node/config", { headers: { authorization: `Bearer ${credential}` } });
    expect((await config(first.credential)).status).toBe(401);
    const waiting = await config(again.credential);
    expect(waiting.status).toBe(202);
    expect(await waiting.json()).toMatchObject({ reason: "pending_approval" });
    const audit = t.db.select().from(auditEvents).where(eq(auditEvents.action, "machine.enrolled")).all();
    expect(audit.at(-1)?.detail).toMatchObject({ from: "failed", to: "pending", reenrolled: true });
  });

  it("an admin's reinstall → exactly one new enrollment (pending, same node), the old credential dead, the next enroll a conflict", async () => {
    const t = makeTestApp();
    const first = await discoverAndEnroll(t);
    expect((await postJson(t, `/api/v1/nodes/${first.node_id}/reinstall`, {}, admin)).status).toBe(200);
    const again = await enroll(t, (await tokenFor(t)).token);
    expect(again.status).toBe(201);
    expect(await again.json()).toMatchObject({ node_id: first.node_id, state: "pending" });
    expect((await t.app.request("/api/v1/node/config", { headers: { authorization: `Bearer ${first.credential}` } })).status).toBe(401);
    expect((await enroll(t, (await tokenFor(t)).token)).status).toBe(409);
  });

  it("machine booted with placeholder SMBIOS, agent reports real uuid → filled in, no conflict", async () => {
    const t = makeTestApp();
    await t.app.request("/boot.ipxe?mac=52:54:00:12:34:56&uuid=00000000-0000-0000-0000-000000000000&serial=");
    const { token } = await tokenFor(t);
    expect((await enroll(t, token)).status).toBe(201);
    expect(t.db.select().from(machines).get()).toMatchObject({ uuid, serial });
  });
});

describe("many machines at once", () => {
  it("50 machines enrolling concurrently → 50 distinct pending nodes, 50 spent tokens", async () => {
    const t = makeTestApp();
    const macs = Array.from({ length: 50 }, (_, i) => `52:54:00:00:01:${i.toString(16).padStart(2, "0")}`);
    const answers = await Promise.all(
      macs.map(async (m) => {
        const { token } = await tokenFor(t, m);
        return enroll(t, token, { mac: m, uuid: undefined, serial: undefined });
      }),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(50).fill(201));
    const ids = new Set(await Promise.all(answers.map(async (r) => ((await r.json()) as { node_id: number }).node_id)));
    expect(ids.size).toBe(50);
    expect(
      t.db
        .select()
        .from(machines)
        .all()
        .every((m) => m.state === "pending"),
    ).toBe(true);
    expect(t.db.select().from(usedTokens).all()).toHaveLength(50);
  });
});

describe("node credential", () => {
  it("pending machine → GET /api/v1/node/config answers 202 pending_approval with retry_after", async () => {
    const t = makeTestApp();
    const { credential } = await discoverAndEnroll(t);
    const res = await getWith(t, "/api/v1/node/config", credential);
    expect(res.status).toBe(202);
    expect(res.headers.get("retry-after")).toBe("30");
    expect(await res.json()).toEqual({ state: "pending", reason: "pending_approval", retry_after: 30 });
  });

  it("approved machine → config comes from the quorum (first machine of a 1-server cluster: 200, role init)", async () => {
    const t = makeTestApp();
    const { node_id, credential } = await discoverAndEnroll(t);
    expect((await postJson(t, `/api/v1/nodes/${node_id}/approve`, {}, admin)).status).toBe(200);
    const res = await getWith(t, "/api/v1/node/config", credential);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ role: "init", k3s_version: t.config.k3sVersion });
  });

  it("agent posts events → 202, stored with source agent, listed newest first for admins", async () => {
    const t = makeTestApp();
    const { node_id, credential } = await discoverAndEnroll(t);
    const auth = { authorization: `Bearer ${credential}` };
    expect((await postJson(t, "/api/v1/node/events", { type: "installing" }, auth)).status).toBe(202);
    // k3s-started and ready need a quorum seat: approve, then fetch the config that assigns it.
    expect((await postJson(t, `/api/v1/nodes/${node_id}/approve`, {}, admin)).status).toBe(200);
    expect((await getWith(t, "/api/v1/node/config", credential)).status).toBe(200);
    t.clock.advance(1000);
    const hash = "AB".repeat(32);
    expect((await postJson(t, "/api/v1/node/events", { type: "ready", detail: "k3s is up", ca_hash: hash }, auth)).status).toBe(202);
    const res = await t.app.request(`/api/v1/nodes/${node_id}/events`, { headers: admin });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { events: Array<Record<string, unknown>>; audit: Array<Record<string, unknown>> };
    expect(body.events.map((e) => e.type)).toEqual(["ready", "installing"]);
    expect(t.db.select().from(machines).get()!.state).toBe("joined");
    expect(body.events[0]).toMatchObject({ source: "agent", detail: "k3s is up", ca_hash: "ab".repeat(32) });
    expect(body.audit.map((a) => a.action)).toContain("machine.enrolled");
  });
});
