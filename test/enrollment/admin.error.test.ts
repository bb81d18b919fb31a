import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { auditEvents, machines } from "../../db/schema.js";
import { makeTestApp } from "../helpers/app.js";
import { admin, bootQuery, discoverAndEnroll, postJson, type TestApp } from "./fixtures.js";

async function expectError(res: Response, status: number, error: string) {
  expect(res.status).toBe(status);
  const body = (await res.json()) as { error: string; message: string };
  expect(body.error).toBe(error);
  return body;
}

function decisions(t: TestApp) {
  return t.db
    .select()
    .from(auditEvents)
    .all()
    .filter((a) => a.action === "machine.approved" || a.action === "machine.rejected");
}

describe("approve/reject refusals", () => {
  it("approve an approved, provisioning or joined machine → 200 already approved, unchanged, nothing audited", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    for (const state of ["approved", "joined", "provisioning"] as const) {
      t.db.update(machines).set({ state }).where(eq(machines.id, node_id)).run();
      const res = await postJson(t, `/api/v1/nodes/${node_id}/approve`, {}, admin);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ id: node_id, state, already_approved: true, message: expect.stringContaining("already approved") });
      expect(t.db.select().from(machines).get()!.state).toBe(state);
    }
    expect(decisions(t)).toHaveLength(0);
    // Into another cluster is a real change, not a repeat: refused, as before.
    t.db.update(machines).set({ state: "approved" }).where(eq(machines.id, node_id)).run();
    await expectError(await postJson(t, `/api/v1/nodes/${node_id}/approve`, { cluster_id: 2 }, admin), 409, "invalid_state");
  });

  it("reject a machine holding a role, or already rejected → 409 invalid_state", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    t.db.update(machines).set({ state: "approved", role: "agent" }).where(eq(machines.id, node_id)).run();
    const body = await expectError(await postJson(t, `/api/v1/nodes/${node_id}/reject`, {}, admin), 409, "invalid_state");
    expect(body.message).toMatch(/retire/);
    t.db.update(machines).set({ state: "rejected", role: null }).where(eq(machines.id, node_id)).run();
    await expectError(await postJson(t, `/api/v1/nodes/${node_id}/reject`, {}, admin), 409, "invalid_state");
    expect(decisions(t)).toHaveLength(0);
  });

  it("bad hostname (upper case, dots, newline, too long) → 422, unchanged", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    for (const hostname of ["Edge01", "edge_01", "-edge", "edge.site", "edge\nbad: yes", "a".repeat(64), ""]) {
      await expectError(await postJson(t, `/api/v1/nodes/${node_id}/approve`, { hostname }, admin), 422, "validation_failed");
    }
    expect(t.db.select().from(machines).get()!.state).toBe("pending");
    expect(decisions(t)).toHaveLength(0);
  });

  it("bad labels (key syntax, value too long, injected newline) → 422", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    for (const labels of [{ "bad key": "x" }, { "Example.com/x": "y" }, { ok: "v".repeat(64) }, { ok: "a\nb" }, { "-x": "y" }, { ok: 5 }]) {
      await expectError(await postJson(t, `/api/v1/nodes/${node_id}/approve`, { labels }, admin), 422, "validation_failed");
    }
    expect(decisions(t)).toHaveLength(0);
  });

  it("bad role, unknown field, unknown cluster → 422", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    await expectError(await postJson(t, `/api/v1/nodes/${node_id}/approve`, { role: "init" }, admin), 422, "validation_failed");
    await expectError(await postJson(t, `/api/v1/nodes/${node_id}/approve`, { state: "joined" }, admin), 422, "validation_failed");
    await expectError(await postJson(t, `/api/v1/nodes/${node_id}/approve`, { cluster_id: 42 }, admin), 422, "validation_failed");
    await expectError(await postJson(t, `/api/v1/nodes/${node_id}/approve`, { cluster_id: "1" }, admin), 422, "validation_failed");
    expect(t.db.select().from(machines).get()!.state).toBe("pending");
  });

  it("hostname another machine of the cluster already has → 409 conflict", async () => {
    const t = makeTestApp();
    const { node_id } = await discoverAndEnroll(t);
    expect((await postJson(t, `/api/v1/nodes/${node_id}/approve`, { hostname: "edge-01" }, admin)).status).toBe(200);
    await t.app.request(`/boot.ipxe?mac=52:54:00:00:00:02`);
    const other = t.db
      .select()
      .from(machines)
      .all()
      .find((m) => m.mac === "52:54:00:00:00:02")!;
    t.db.update(machines).set({ state: "pending" }).where(eq(machines.id, other.id)).run();
    await expectError(await postJson(t, `/api/v1/nodes/${other.id}/approve`, { hostname: "edge-01" }, admin), 409, "conflict");
    expect(
      t.db
        .select()
        .from(machines)
        .all()
        .find((m) => m.id === other.id)!.state,
    ).toBe("pending");
  });

  it("malformed approve body → 400 invalid_json", async () => {
    const t = makeTestApp();
    await t.app.request(`/boot.ipxe?${bootQuery}`);
    const res = await t.app.request("/api/v1/nodes/1/approve", { method: "POST", headers: { ...admin, "content-type": "application/json" }, body: "{role:" });
    await expectError(res, 400, "invalid_json");
  });
});
