/**
 * Pre-registrations, rules, explain, the audit log and the inventory through the admin API
 * (`app.request`, in-memory database). Source-address rules are tested over real sockets in
 * approval-race.test.ts: `app.request` has no peer address.
 */
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { Db } from "../../db/client.js";
import { approvalRules, auditEvents, machines } from "../../db/schema.js";
import { makeTestApp } from "../helpers/app.js";
import { admin, enroll, facts, tokenFor, type TestApp } from "../enrollment/fixtures.js";
import { testMac } from "../quorum/fixtures.js";

const json = async (res: Response) => (await res.json()) as Record<string, any>;
const get = (t: TestApp, path: string) => t.app.request(path, { headers: admin });
const send = (t: TestApp, method: string, path: string, body?: unknown) =>
  t.app.request(path, { method, headers: { ...admin, "content-type": "application/json" }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

/** Boot (discovered), then enroll with a fresh token; returns the enroll answer. */
async function rackOne(t: TestApp, n: number, o: { serial?: string; manufacturer?: string; product?: string } = {}) {
  const mac = testMac(n);
  const serial = o.serial ?? `SN-${n}`;
  const q = new URLSearchParams({ mac, serial, manufacturer: o.manufacturer ?? "Intel Corporation", product: o.product ?? "NUC13ANHi5" });
  expect((await t.app.request(`/boot.ipxe?${q}`)).status).toBe(200);
  const { token } = await tokenFor(t, mac);
  const res = await enroll(t, token, {
    mac,
    serial,
    uuid: undefined,
    facts: { ...facts, manufacturer: o.manufacturer ?? "Intel Corporation", product: o.product ?? "NUC13ANHi5" },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return json(res);
}

/** Every row of every table, to show a request wrote nothing. */
function dump(db: Db): string {
  const client = db.$client;
  const tables = client.prepare("select name from sqlite_master where type = 'table' order by name").all() as { name: string }[];
  return JSON.stringify(tables.map(({ name }) => [name, client.prepare(`select * from "${name}"`).all()]));
}

describe("/api/v1/machines (pre-registration)", () => {
  it("POST by serial with hostname, labels and role → 201; the machine is approved the moment it enrolls, approved_by machine:<id>", async () => {
    const t = makeTestApp();
    const created = await send(t, "POST", "/api/v1/machines", {
      serial: "SN-7",
      cluster_id: 1,
      hostname: "edge-07",
      labels: { "example.com/rack": "r2" },
      role: "agent",
    });
    expect(created.status).toBe(201);
    const pre = await json(created);
    expect(pre).toMatchObject({ serial: "SN-7", mac: null, cluster_id: 1, hostname: "edge-07", role: "agent", machine_id: null });
    const answer = await rackOne(t, 7);
    expect(answer.state).toBe("approved");
    const m = t.db.select().from(machines).where(eq(machines.id, answer.node_id)).get()!;
    expect(m).toMatchObject({ approvedBy: `machine:${pre.id}`, hostname: "edge-07", labels: { "example.com/rack": "r2" }, rolePreference: "agent" });
    const node = await json(await get(t, `/api/v1/nodes/${answer.node_id}`));
    expect(node).toMatchObject({ approved_by: `machine:${pre.id}`, state: "approved" });
    const audit = t.db.select().from(auditEvents).where(eq(auditEvents.action, "machine.approved")).all();
    expect(audit).toEqual([expect.objectContaining({ actor: `machine:${pre.id}`, machineId: answer.node_id })]);
    // Bound to that machine now: another machine claiming the same serial stays pending.
    const { machines: list } = await json(await get(t, "/api/v1/machines"));
    expect(list[0]).toMatchObject({ machine_id: answer.node_id, used_at: expect.any(String) });
    expect((await rackOne(t, 8, { serial: "SN-7" })).state).toBe("pending");
  });

  it("by MAC and by UUID; a MAC in another spelling is normalized; the same identity twice → 409; DELETE → gone", async () => {
    const t = makeTestApp();
    const byMac = await json(await send(t, "POST", "/api/v1/machines", { mac: "52-54-00-00-00-09", cluster_id: 1 }));
    expect(byMac.mac).toBe("52:54:00:00:00:09");
    expect((await send(t, "POST", "/api/v1/machines", { mac: "52:54:00:00:00:09", cluster_id: 1 })).status).toBe(409);
    const byUuid = await send(t, "POST", "/api/v1/machines", { uuid: "8C3A5E2B-1D4F-4B6A-9C2E-7F1A0B3C4D5E", cluster_id: 1 });
    expect((await json(byUuid)).uuid).toBe("8c3a5e2b-1d4f-4b6a-9c2e-7f1a0b3c4d5e");
    expect((await rackOne(t, 9)).state).toBe("approved");
    expect((await send(t, "DELETE", `/api/v1/machines/${byMac.id}`)).status).toBe(200);
    expect((await send(t, "DELETE", `/api/v1/machines/${byMac.id}`)).status).toBe(404);
  });

  it("bad bodies → 422 naming the field: none or two identities, a placeholder serial, an unknown cluster, a bad hostname", async () => {
    const t = makeTestApp();
    const bad = [
      [{ cluster_id: 1 }, "mac"],
      [{ mac: "52:54:00:00:00:01", serial: "X", cluster_id: 1 }, "mac"],
      [{ serial: "To be filled by O.E.M.", cluster_id: 1 }, "serial"],
      [{ uuid: "00000000-0000-0000-0000-000000000000", cluster_id: 1 }, "uuid"],
      [{ serial: "SN-1", cluster_id: 99 }, "cluster_id"],
      [{ serial: "SN-1", cluster_id: 1, hostname: "Edge_01" }, "hostname"],
      [{ serial: "SN-1", cluster_id: 1, role: "init" }, "role"],
    ] as const;
    for (const [body, field] of bad) {
      const res = await send(t, "POST", "/api/v1/machines", body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      const err = await json(res);
      expect(err.error).toBe("validation_failed");
      expect(err.message).toMatch(new RegExp(`^${field}`));
    }
    expect((await json(await get(t, "/api/v1/machines"))).machines).toEqual([]);
  });
});

describe("/api/v1/rules", () => {
  it("a rule by manufacturer and product approves into its cluster with its role; PATCH disables it; disabled and exhausted rules stay listed", async () => {
    const t = makeTestApp();
    const created = await send(t, "POST", "/api/v1/rules", {
      name: "nucs",
      cluster_id: 1,
      match: { manufacturer: "Intel Corporation", product: "NUC13ANHi5" },
      role: "agent",
      limit: 1,
    });
    expect(created.status).toBe(201);
    const rule = await json(created);
    expect(rule).toMatchObject({
      name: "nucs",
      match: { manufacturer: "Intel Corporation", product: "NUC13ANHi5" },
      role: "agent",
      limit: 1,
      enabled: true,
      status: "active",
    });
    const first = await rackOne(t, 1);
    expect(first.state).toBe("approved");
    expect(t.db.select().from(machines).where(eq(machines.id, first.node_id)).get()).toMatchObject({ approvedBy: "rule:nucs", rolePreference: "agent" });
    expect((await rackOne(t, 2)).state).toBe("pending");
    expect((await json(await get(t, "/api/v1/rules"))).rules[0]).toMatchObject({ limit: 0, approved_count: 1, status: "exhausted" });
    // Another site's NUC model does not match.
    expect((await rackOne(t, 3, { product: "NUC12WSHi5" })).state).toBe("pending");

    const patched = await json(await send(t, "PATCH", `/api/v1/rules/${rule.id}`, { limit: 5, enabled: false }));
    expect(patched).toMatchObject({ limit: 5, enabled: false, status: "disabled" });
    expect((await rackOne(t, 4)).state).toBe("pending");
    expect((await json(await send(t, "PATCH", `/api/v1/rules/${rule.id}`, { enabled: true }))).status).toBe("active");
    expect((await rackOne(t, 5)).state).toBe("approved");
    const audits = t.db.select().from(auditEvents).where(eq(auditEvents.action, "machine.approved")).all();
    expect(audits.map((a) => [a.actor, (a.detail as { rule: string }).rule])).toEqual([
      ["rule:nucs", "nucs"],
      ["rule:nucs", "nucs"],
    ]);
    expect((await send(t, "DELETE", `/api/v1/rules/${rule.id}`)).status).toBe(200);
    expect(t.db.select().from(approvalRules).all()).toEqual([]);
  });

  it("bad rules → 422 (no condition, a bad CIDR, a negative limit, an unknown key); a duplicate name → 409; unknown id → 404", async () => {
    const t = makeTestApp();
    for (const body of [
      { name: "x", cluster_id: 1, match: {} },
      { name: "x", cluster_id: 1, match: { cidr: "10.0.0.0/40" } },
      { name: "x", cluster_id: 1, match: { cidr: "10.0.0.0/8" }, limit: -1 },
      { name: "x", cluster_id: 1, match: { cidr: "10.0.0.0/8", mac: "x" } },
      { name: "Bad Name", cluster_id: 1, match: { cidr: "10.0.0.0/8" } },
    ]) {
      expect((await send(t, "POST", "/api/v1/rules", body)).status, JSON.stringify(body)).toBe(422);
    }
    expect((await send(t, "POST", "/api/v1/rules", { name: "x", cluster_id: 1, match: { cidr: "10.0.0.0/8" } })).status).toBe(201);
    expect((await send(t, "POST", "/api/v1/rules", { name: "x", cluster_id: 1, match: { cidr: "10.0.0.0/8" } })).status).toBe(409);
    expect((await send(t, "PATCH", "/api/v1/rules/99", { enabled: false })).status).toBe(404);
  });

  it("a machine with an unresolved conflict is never auto-approved, even by a matching rule", async () => {
    const t = makeTestApp();
    await send(t, "POST", "/api/v1/rules", { name: "all-nucs", cluster_id: 1, match: { manufacturer: "Intel Corporation" } });
    const mac = testMac(40);
    await t.app.request(`/boot.ipxe?mac=${encodeURIComponent(mac)}`);
    // A conflict recorded on the machine (a refused second enrollment), before its enroll.
    t.db
      .update(machines)
      .set({ conflicts: [{ at: t.clock(), source_ip: "10.0.0.9", facts: null }] })
      .where(eq(machines.mac, mac))
      .run();
    const { token } = await tokenFor(t, mac);
    const before = await json(await get(t, `/api/v1/explain?mac=${mac}&manufacturer=Intel%20Corporation`));
    expect(before).toMatchObject({ approval: null, waiting_reason: "unresolved_conflict" });
    const res = await enroll(t, token, { mac, serial: "SN-40", uuid: undefined, facts: { ...facts, manufacturer: "Intel Corporation" } });
    expect((await json(res)).state).toBe("pending");
    expect(t.db.select().from(auditEvents).where(eq(auditEvents.action, "machine.approved")).all()).toEqual([]);
    // The same facts without a conflict: approved.
    expect((await rackOne(t, 41)).state).toBe("approved");
  });
});

describe("GET /api/v1/explain", () => {
  it("names the winner, why each other one did not match, the role if approved now, what it waits for — and writes nothing", async () => {
    const t = makeTestApp();
    const pre = await json(await send(t, "POST", "/api/v1/machines", { serial: "SN-77", cluster_id: 1, role: "agent" }));
    await send(t, "POST", "/api/v1/rules", { name: "nucs", cluster_id: 1, match: { manufacturer: "Intel Corporation" }, limit: 2 });
    await send(t, "POST", "/api/v1/rules", { name: "dells", cluster_id: 1, match: { manufacturer: "Dell Inc." } });
    await rackOne(t, 1, { manufacturer: "Lenovo" });
    const before = dump(t.db);

    const res = await get(t, "/api/v1/explain?serial=SN-77&manufacturer=Intel%20Corporation&product=NUC13ANHi5&ip=10.0.0.5");
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({
      cluster_id: 1,
      approval: { by: `machine:${pre.id}`, name: `machine:${pre.id}` },
      role_if_approved_now: "agent",
      // A fresh cluster: an agent waits until a server is ready.
      waiting_reason: "waiting_for_server",
      machine: null,
    });
    expect(body.why).toEqual([
      expect.objectContaining({ kind: "pre_registration", name: `machine:${pre.id}`, matched: true, chosen: true }),
      expect.objectContaining({ kind: "rule", name: "nucs", matched: true, chosen: false, reason: expect.stringContaining("pre-registration wins") }),
      expect.objectContaining({ kind: "rule", name: "dells", matched: false, reason: "manufacturer Intel Corporation is not Dell Inc." }),
    ]);
    const nobody = await json(await get(t, "/api/v1/explain?manufacturer=Lenovo"));
    expect(nobody).toMatchObject({ approval: null, role_if_approved_now: "init", waiting_reason: "pending_approval" });
    // A machine already past its first enroll: policy no longer applies, and explain says so.
    const known = await json(await get(t, `/api/v1/explain?mac=${testMac(1)}&manufacturer=Intel%20Corporation`));
    expect(known).toMatchObject({ approval: null, waiting_reason: "policy_applies_at_first_enroll_only", machine: { state: "pending" } });
    expect(dump(t.db)).toBe(before);
  });

  it("nothing given, or a bad value → 422", async () => {
    const t = makeTestApp();
    expect((await get(t, "/api/v1/explain")).status).toBe(422);
    expect((await get(t, "/api/v1/explain?ip=10.0.0.500")).status).toBe(422);
    expect((await get(t, "/api/v1/explain?mac=nope")).status).toBe(422);
    expect((await get(t, "/api/v1/explain?colour=red")).status).toBe(422);
  });
});

describe("lists: limit, cursor, next_cursor; nodes filters; a machine by id, MAC or serial", () => {
  it("nodes page through with the cursor, filter by q and state, and keep the plural key", async () => {
    const t = makeTestApp();
    for (let n = 1; n <= 5; n++) await rackOne(t, n, n === 3 ? { serial: "STICKER-ABC" } : {});
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const body = await json(await get(t, `/api/v1/nodes?limit=2${cursor ? `&cursor=${cursor}` : ""}`));
      seen.push(...body.nodes.map((n: { id: number }) => n.id));
      cursor = body.next_cursor;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(pages).toBe(3);
    const exact = await json(await get(t, "/api/v1/nodes?limit=5"));
    expect(exact.next_cursor).toBeNull();
    expect((await json(await get(t, "/api/v1/nodes?q=sticker-a"))).nodes.map((n: { id: number }) => n.id)).toEqual([3]);
    expect((await json(await get(t, "/api/v1/nodes?q=52:54:00:00:00:04"))).nodes.map((n: { id: number }) => n.id)).toEqual([4]);
    expect((await json(await get(t, "/api/v1/nodes?q=nuc13&state=pending"))).nodes).toHaveLength(5);
    // LIKE wildcards in q match themselves.
    expect((await json(await get(t, "/api/v1/nodes?q=%25"))).nodes).toEqual([]);
    for (const bad of ["limit=0", "limit=1001", "limit=ten", "cursor=abc", "cursor=djE6MA", "state=happy"]) {
      expect((await get(t, `/api/v1/nodes?${bad}`)).status, bad).toBe(422);
    }
    // By MAC (any spelling) and by the serial on the sticker, like by id.
    expect((await json(await get(t, "/api/v1/nodes/52-54-00-00-00-03"))).id).toBe(3);
    expect((await json(await get(t, "/api/v1/nodes/sticker-abc"))).id).toBe(3);
    expect((await get(t, "/api/v1/nodes/NO-SUCH-SERIAL")).status).toBe(404);
    const approved = await json(await send(t, "POST", "/api/v1/nodes/STICKER-ABC/approve", {}));
    expect(approved).toMatchObject({ id: 3, state: "approved", approved_by: "admin:env" });
    const again = await send(t, "POST", "/api/v1/nodes/3/approve", {});
    expect(again.status).toBe(200);
    expect(await json(again)).toMatchObject({ already_approved: true });
    // Two machines with one serial: the serial alone cannot say which.
    await rackOne(t, 6, { serial: "DUP-1" });
    await rackOne(t, 7, { serial: "DUP-1" });
    expect((await get(t, "/api/v1/nodes/DUP-1")).status).toBe(409);
  });

  it("a failed install shows as install_failed and a filter, instead of hiding in pending; the next enroll clears it", async () => {
    const t = makeTestApp();
    const mac = testMac(21);
    await t.app.request(`/boot.ipxe?mac=${encodeURIComponent(mac)}`);
    await rackOne(t, 22);
    const text = await (await t.app.request(`/cloud-init/${mac}/user-data`)).text();
    const endpoint = new URL(
      (parse(text, { version: "1.1" }) as { autoinstall: { reporting: { edgejoin: { endpoint: string } } } }).autoinstall.reporting.edgejoin.endpoint,
    );
    const fail = { name: "subiquity/Install/install/configure_storage", event_type: "finish", origin: "curtin", result: "FAIL", description: "no disk" };
    expect((await t.app.request(`${endpoint.pathname}${endpoint.search}`, { method: "POST", body: JSON.stringify(fail) })).status).toBe(202);
    const failed = await json(await get(t, "/api/v1/nodes?install_failed=true"));
    expect(failed.nodes).toEqual([expect.objectContaining({ mac, install_failed: true, install_failed_at: expect.any(String), state: "discovered" })]);
    expect((await json(await get(t, "/api/v1/nodes?install_failed=false"))).nodes.map((n: { mac: string }) => n.mac)).toEqual([testMac(22)]);
    const { token } = await tokenFor(t, mac);
    expect((await enroll(t, token, { mac, serial: "SN-21", uuid: undefined })).status).toBe(201);
    expect((await json(await get(t, "/api/v1/nodes?install_failed=true"))).nodes).toEqual([]);
  });

  it("events: the audit log, newest first, filtered by machine, action and actor, paged", async () => {
    const t = makeTestApp();
    await send(t, "POST", "/api/v1/rules", { name: "nucs", cluster_id: 1, match: { manufacturer: "Intel Corporation" }, limit: 1 });
    const a = await rackOne(t, 1);
    await rackOne(t, 2);
    const byRule = await json(await get(t, "/api/v1/events?actor=rule:nucs"));
    expect(byRule.events).toEqual([expect.objectContaining({ action: "machine.approved", machine_id: a.node_id, actor: "rule:nucs" })]);
    const mine = await json(await get(t, `/api/v1/events?machine_id=${a.node_id}&action=machine.enrolled`));
    expect(mine.events).toHaveLength(1);
    const all: number[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 20; i++) {
      const page: Record<string, any> = await json(await get(t, `/api/v1/events?limit=3${cursor ? `&cursor=${cursor}` : ""}`));
      all.push(...page.events.map((e: { id: number }) => e.id));
      cursor = page.next_cursor;
      if (cursor === null) break;
    }
    expect(all).toEqual([...all].sort((x, y) => y - x));
    expect(all.length).toBe(t.db.select().from(auditEvents).all().length);
    expect((await get(t, "/api/v1/events?action=DROP TABLE")).status).toBe(422);
  });

  it("clusters, machines and rules page the same way", async () => {
    const t = makeTestApp();
    for (const name of ["b", "c"]) expect((await send(t, "POST", "/api/v1/clusters", { name })).status).toBe(201);
    const first = await json(await get(t, "/api/v1/clusters?limit=2"));
    expect(first.clusters.map((c: { name: string }) => c.name)).toEqual(["default", "b"]);
    const second = await json(await get(t, `/api/v1/clusters?limit=2&cursor=${first.next_cursor}`));
    expect(second).toMatchObject({ clusters: [expect.objectContaining({ name: "c" })], next_cursor: null });
    expect(await json(await get(t, "/api/v1/rules"))).toEqual({ rules: [], next_cursor: null });
    expect(await json(await get(t, "/api/v1/machines"))).toEqual({ machines: [], next_cursor: null });
  });
});

describe("quorum and retire", () => {
  it("raising servers from 3 to 5 is scaling, not degraded: desired and actual counts are separate", async () => {
    const t = makeTestApp();
    const now = t.clock();
    const seat = (n: number, role: "init" | "server") =>
      t.db
        .insert(machines)
        .values({
          mac: testMac(n),
          state: "joined",
          role,
          clusterId: 1,
          hostname: `s${n}`,
          roleAssignedAt: now - 10_000,
          k3sStartedAt: now - 9_000,
          readyAt: now - 8_000,
          firstSeenAt: now,
          lastSeenAt: now,
          stateChangedAt: now,
        })
        .returning()
        .get();
    seat(1, "init");
    seat(2, "server");
    const third = seat(3, "server");
    expect((await send(t, "PATCH", "/api/v1/clusters/1", { servers: 3 })).status).toBe(200);
    // The cluster formed when all three were ready (what the third `ready` event records).
    t.db.$client.prepare("update clusters set formed_at = ?, init_started_at = ?, ready_servers_at_ok = 3 where id = 1").run(now - 8_000, now - 9_000);
    expect(await json(await get(t, "/api/v1/clusters/1/quorum"))).toMatchObject({ health: "ok", servers_desired: 3, servers_actual: 3, servers_ready: 3 });
    await send(t, "PATCH", "/api/v1/clusters/1", { servers: 5 });
    expect(await json(await get(t, "/api/v1/clusters/1/quorum"))).toMatchObject({
      health: "scaling",
      servers_health: "scaling",
      servers_desired: 5,
      servers_actual: 3,
      servers_ready: 3,
    });
    // A server that was ready and is not any more is a loss, not scaling.
    t.db.update(machines).set({ state: "failed", readyAt: null }).where(eq(machines.id, third.id)).run();
    expect((await json(await get(t, "/api/v1/clusters/1/quorum"))).health).toBe("lost");
    t.db.update(machines).set({ state: "joined", readyAt: now }).where(eq(machines.id, third.id)).run();
    expect((await json(await get(t, "/api/v1/clusters/1/quorum"))).health).toBe("scaling");

    // Retiring a server says what to remove from k3s; retiring it again says nothing more to do.
    const retired = await json(await send(t, "POST", "/api/v1/nodes/2/retire", {}));
    expect(retired).toMatchObject({ state: "retired", remove_from_k3s: { node_name: "s2", commands: expect.arrayContaining(["kubectl delete node s2"]) } });
    expect(retired.remove_from_k3s.why).toMatch(/etcd/);
    expect((await json(await send(t, "POST", "/api/v1/nodes/2/retire", {}))).remove_from_k3s).toBeNull();
    // Two of the three that made the cluster whole are left: a loss, whatever the desired count says.
    await send(t, "PATCH", "/api/v1/clusters/1", { servers: 3 });
    expect(await json(await get(t, "/api/v1/clusters/1/quorum"))).toMatchObject({ health: "degraded", servers_actual: 2, servers_ready: 2 });
  });
});
