/**
 * A cluster whose `install_policy` is `after_approval` wipes nothing until the machine is
 * approved: an unknown machine gets an iPXE screen that waits and asks again every 30 s; an
 * admin (from `discovered`), a rule or a pre-registration lets it install.
 */
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { auditEvents, machines } from "../../db/schema.js";
import { makeTestApp } from "../helpers/app.js";
import { expectGolden } from "../helpers/golden.js";
import { admin, enroll, facts, postJson, tokenFor, type TestApp } from "../enrollment/fixtures.js";

const mac = "52:54:00:12:34:56";
const identity = `mac=52%3A54%3A00%3A12%3A34%3A56&serial=SN-0001&arch=x86_64&platform=efi&manufacturer=Intel%20Corporation&product=NUC13ANHi5`;

async function holdingCluster(): Promise<TestApp> {
  const t = makeTestApp();
  const res = await t.app.request("/api/v1/clusters/1", {
    method: "PATCH",
    headers: { ...admin, "content-type": "application/json" },
    body: JSON.stringify({ install_policy: "after_approval" }),
  });
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ install_policy: "after_approval" });
  return t;
}

const boot = async (t: TestApp) => (await t.app.request(`/boot.ipxe?${identity}`)).text();

/** The answer goes the install way (the installer, or the message that its files are missing here), not the wait screen. */
const installing = /installing 52:54:00:12:34:5|the installer of cluster/;

describe("install_policy after_approval", () => {
  it("an unknown machine → the wait screen (golden), asking again every 30 s; nothing installs; it stays discovered", async () => {
    const t = await holdingCluster();
    const script = await boot(t);
    expectGolden("wait-approval.ipxe", script);
    expect(script).toContain("sleep 30");
    expect(script).not.toMatch(/kernel|initrd|installing/);
    expect(await boot(t)).toBe(script);
    expect(t.db.select().from(machines).get()).toMatchObject({ state: "discovered", approvedBy: null });
  });

  it("immediate (the default) still installs an unknown machine at once", async () => {
    const t = makeTestApp();
    expect(await boot(t)).toMatch(installing);
  });

  it("an admin approves it from discovered → the next boot installs; its first enroll keeps it approved, approved_by the admin", async () => {
    const t = await holdingCluster();
    await boot(t);
    const approved = await postJson(t, `/api/v1/nodes/${encodeURIComponent(mac)}/approve`, {}, admin);
    expect(approved.status).toBe(200);
    expect(await approved.json()).toMatchObject({ state: "approved", approved_by: "admin:env" });
    expect(await boot(t)).toMatch(installing);
    const { token } = await tokenFor(t, mac);
    const res = await enroll(t, token, { serial: "SN-0001", uuid: undefined });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ state: "approved" });
    expect(t.db.select().from(machines).get()).toMatchObject({ state: "approved", approvedBy: "admin:env", approvedBeforeEnroll: false });
    // Only that first enroll: another one never keeps an approval.
    const again = await enroll(t, (await tokenFor(t, mac)).token, { serial: "SN-0001", uuid: undefined });
    if (again.status === 201) expect(((await again.json()) as { state: string }).state).not.toBe("approved");
    else expect(again.status).toBe(409);
  });

  it("a matching rule approves it at boot: it installs at once, audited with the rule's name; a pre-registration likewise", async () => {
    const t = await holdingCluster();
    const rule = await postJson(t, "/api/v1/rules", { name: "nucs", cluster_id: 1, match: { manufacturer: "Intel Corporation" }, limit: 1 }, admin);
    expect(rule.status).toBe(201);
    expect(await boot(t)).toMatch(installing);
    expect(t.db.select().from(machines).get()).toMatchObject({ state: "approved", approvedBy: "rule:nucs", approvedBeforeEnroll: true });
    const [audit] = t.db.select().from(auditEvents).where(eq(auditEvents.action, "machine.approved")).all();
    expect(audit).toMatchObject({ actor: "rule:nucs", detail: expect.objectContaining({ rule: "nucs", at: "boot" }) });
    const res = await enroll(t, (await tokenFor(t, mac)).token, { serial: "SN-0001", uuid: undefined, facts: { ...facts, manufacturer: "Intel Corporation" } });
    expect(await res.json()).toMatchObject({ state: "approved" });

    // The rule is used up: the next unknown machine waits, until a pre-registration names it.
    const other = "mac=52%3A54%3A00%3A12%3A34%3A57&serial=SN-0002&manufacturer=Intel%20Corporation";
    expect(await (await t.app.request(`/boot.ipxe?${other}`)).text()).toContain("waiting for approval");
    const pre = (await (await postJson(t, "/api/v1/machines", { serial: "SN-0002", cluster_id: 1 }, admin)).json()) as { id: number };
    expect(await (await t.app.request(`/boot.ipxe?${other}`)).text()).toMatch(installing);
    expect(t.db.select().from(machines).where(eq(machines.mac, "52:54:00:12:34:57")).get()).toMatchObject({ approvedBy: `machine:${pre.id}` });
  });
});
