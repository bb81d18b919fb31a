import { describe, expect, it } from "vitest";
import { auditEvents, clusters, machines } from "../../db/schema.js";
import { makeTestApp } from "../helpers/app.js";

describe("GET /cloud-init/:mac/* refusals", () => {
  it.each([
    ["not-a-mac"],
    ["52:54:00:12:34"],
    ["52:54:00:12:34:56:78"],
    ["52%3A54%3A00%3A12%3A34%3AZZ"],
    ["52:54:00:12:34:56%0Aruncmd"],
    ["zz:zz:zz:zz:zz:zz"],
  ])("MAC %s → 422 invalid_mac JSON, nothing stored", async (bad) => {
    const { app, db } = makeTestApp();
    for (const file of ["meta-data", "user-data", "vendor-data", "network-config"]) {
      const res = await app.request(`/cloud-init/${bad}/${file}`);
      expect(res.status).toBe(422);
      expect(await res.json()).toMatchObject({ error: "invalid_mac" });
    }
    expect(db.select().from(machines).all()).toHaveLength(0);
    expect(
      db
        .select()
        .from(auditEvents)
        .all()
        .filter((a) => a.action !== "cluster.created"),
    ).toHaveLength(0);
  });

  it("a file NoCloud does not have → 404 JSON, nothing stored", async () => {
    const { app, db } = makeTestApp();
    const res = await app.request("/cloud-init/52:54:00:12:34:56/secrets");
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: "not_found" });
    expect(db.select().from(machines).all()).toHaveLength(0);
  });

  it("retired machine → an inert cloud-config without agent or token", async () => {
    const { app, db } = makeTestApp();
    await app.request("/cloud-init/52:54:00:12:34:56/meta-data");
    db.update(machines).set({ state: "retired" }).run();
    const text = await (await app.request("/cloud-init/52:54:00:12:34:56/user-data")).text();
    expect(text).toBe("#cloud-config\n{}\n");
  });

  it("a cluster template path that climbs out of the templates folder → 500 without rendering", async () => {
    const { app, db } = makeTestApp();
    db.update(clusters).set({ userDataTemplate: "../../etc/passwd" }).run();
    const res = await app.request("/cloud-init/52:54:00:12:34:56/user-data");
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain("root:");
  });
});
