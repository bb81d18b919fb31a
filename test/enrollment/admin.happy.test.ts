import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { auditEvents, clusters, machines } from "../../db/schema.js";
import { makeTestApp } from "../helpers/app.js";
import { admin, discoverAndEnroll, mac, postJson, uuid } from "./fixtures.js";

describe("admin inventory", () => {
  it("GET /api/v1/nodes → machines with PRODUCT.md's snake_case fields; filter by state", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    const res = await t.app.request("/api/v1/nodes", { headers: admin });
    expect(res.status).toBe(200);
    const { nodes } = (await res.json()) as { nodes: Array<Record<string, unknown>> };
    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toMatchObject({ id: node_id, mac, uuid, serial: "SN-0001", state: "pending", role: null, cluster_id: 1, hostname: null });
    expect(nodes[0]!.facts).toMatchObject({ cpu_count: 8 });
    expect(nodes[0]!.first_seen_at).toBe("2026-11-25T12:00:00.000Z");
    const none = await t.app.request("/api/v1/nodes?state=joined", { headers: admin });
    expect(((await none.json()) as { nodes: unknown[] }).nodes).toHaveLength(0);
    const inCluster = await t.app.request("/api/v1/nodes?cluster_id=1&state=pending", { headers: admin });
    expect(((await inCluster.json()) as { nodes: unknown[] }).nodes).toHaveLength(1);
    const otherCluster = await t.app.request("/api/v1/nodes?cluster_id=2", { headers: admin });
    expect(((await otherCluster.json()) as { nodes: unknown[] }).nodes).toHaveLength(0);
    const one = await t.app.request(`/api/v1/nodes/${node_id}`, { headers: admin });
    expect(await one.json()).toMatchObject({ id: node_id, mac });
  });

  it("unknown node → 404 not_found; bad id or filter → 422", async () => {
    const t = makeTestApp();
    expect((await t.app.request("/api/v1/nodes/999", { headers: admin })).status).toBe(404);
    // Not an id nor a MAC: a serial nobody has.
    expect((await t.app.request("/api/v1/nodes/abc", { headers: admin })).status).toBe(404);
    expect((await t.app.request("/api/v1/nodes/a%20b", { headers: admin })).status).toBe(422);
    expect((await t.app.request("/api/v1/nodes?state=happy", { headers: admin })).status).toBe(422);
    expect((await postJson(t, "/api/v1/nodes/999/approve", {}, admin)).status).toBe(404);
  });
});

describe("POST /api/v1/nodes/:id/approve and /reject", () => {
  it("approve with cluster, role, hostname, labels → approved, stored, audited with actor and source", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    t.clock.advance(5000);
    const res = await postJson(
      t,
      `/api/v1/nodes/${node_id}/approve`,
      { cluster_id: 1, role: "server", hostname: "edge-01", labels: { "example.com/rack": "r1", zone: "" } },
      admin,
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      id: node_id,
      state: "approved",
      role_preference: "server",
      hostname: "edge-01",
      labels: { "example.com/rack": "r1", zone: "" },
    });
    const m = t.db.select().from(machines).get()!;
    expect(m).toMatchObject({ state: "approved", rolePreference: "server", hostname: "edge-01", stateChangedAt: t.clock() });
    const [a] = t.db.select().from(auditEvents).where(eq(auditEvents.action, "machine.approved")).all();
    expect(a).toMatchObject({ actor: "admin:env", machineId: node_id, clusterId: 1, at: t.clock() });
    expect(a!.detail).toMatchObject({ from: "pending", role: "server", hostname: "edge-01" });
  });

  it("decision from a socket → audit records the admin's source address", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    const socket = { incoming: { socket: { remoteAddress: "::ffff:10.77.0.9", remotePort: 40000, remoteFamily: "IPv6" } } };
    const res = await t.app.request(`/api/v1/nodes/${node_id}/reject`, { method: "POST", headers: admin }, socket);
    expect(res.status).toBe(200);
    const [a] = t.db.select().from(auditEvents).where(eq(auditEvents.action, "machine.rejected")).all();
    expect(a).toMatchObject({ actor: "admin:env", sourceIp: "10.77.0.9", machineId: node_id });
  });

  it("approve with an empty body → role auto in the machine's cluster", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    const res = await t.app.request(`/api/v1/nodes/${node_id}/approve`, { method: "POST", headers: admin });
    expect(res.status).toBe(200);
    expect(t.db.select().from(machines).get()).toMatchObject({ state: "approved", rolePreference: "auto", clusterId: 1 });
  });

  it("reject, then approve again → rejected, then approved; both audited", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    expect((await postJson(t, `/api/v1/nodes/${node_id}/reject`, { reason: "unknown box" }, admin)).status).toBe(200);
    expect(t.db.select().from(machines).get()!.state).toBe("rejected");
    expect((await postJson(t, `/api/v1/nodes/${node_id}/approve`, {}, admin)).status).toBe(200);
    expect(t.db.select().from(machines).get()!.state).toBe("approved");
    const actions = t.db
      .select()
      .from(auditEvents)
      .all()
      .map((a) => a.action);
    expect(actions.filter((a) => a === "machine.rejected" || a === "machine.approved")).toEqual(["machine.rejected", "machine.approved"]);
  });

  it("failed (seat taken back) or retired machine → approve again → approved, role left to the quorum", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    for (const state of ["failed", "retired"] as const) {
      t.db
        .update(machines)
        .set({ state, role: null, seatRevokedAt: state === "failed" ? t.clock() : null })
        .where(eq(machines.id, node_id))
        .run();
      expect((await postJson(t, `/api/v1/nodes/${node_id}/approve`, { role: "agent" }, admin)).status).toBe(200);
      expect(t.db.select().from(machines).get()).toMatchObject({ state: "approved", role: null, rolePreference: "agent" });
    }
    const froms = t.db
      .select()
      .from(auditEvents)
      .where(eq(auditEvents.action, "machine.approved"))
      .all()
      .map((a) => a.detail?.from);
    expect(froms).toEqual(["failed", "retired"]);
  });

  it("approve into another existing cluster → machine moves there", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    const now = t.clock();
    const lab = t.db
      .insert(clusters)
      .values({
        name: "lab",
        k3sVersion: "v1.31.4+k3s1",
        installer: { kind: "cloud-image", kernel_url: "k", initrd_urls: [], kernel_args: "", iso_url: null },
        serverToken: "s",
        agentToken: "a",
        createdAt: now,
        updatedAt: now,
      })
      .returning()
      .get();
    expect((await postJson(t, `/api/v1/nodes/${node_id}/approve`, { cluster_id: lab.id, role: "agent" }, admin)).status).toBe(200);
    expect(t.db.select().from(machines).get()).toMatchObject({ clusterId: lab.id, rolePreference: "agent" });
  });
});
