/**
 * Issue 9's findings that do not depend on the source address, played through `app.request`: the
 * neighbour fetches seeds, enrolls, boots, and uploads as anyone on the LAN can; the admin decides.
 * Each test failed on the code before the fix (the finding it names).
 */
import { eq } from "drizzle-orm";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { openDb } from "../../db/client.js";
import { auditEvents, clusters, machines, nodeEvents } from "../../db/schema.js";
import { createApp, makeDeps } from "../../server/app.js";
import { ensureDefaultCluster } from "../../server/store/clusters.js";
import { asOverTls, makeTestApp, steppableClock, testCaCertPem, testConfig } from "../helpers/app.js";
import { admin, enroll, postJson, type TestApp } from "../enrollment/fixtures.js";
import { bootstrapTokenOf, testCaHash } from "../quorum/fixtures.js";

const json = { "content-type": "application/json" };
/** The neighbour's address: its requests arrive from it, as over the HTTPS listener (the real machines' carry none). */
const neighbourIp = "127.0.0.2";
const from = (ip: string) => ({ incoming: { socket: { encrypted: true, remoteAddress: ip } } });

/** What /boot.ipxe told the machine to do. */
function bootKind(script: string): "local_disk" | "install" | "other" {
  if (script.includes("booting from its local disk")) return "local_disk";
  if (script.includes("edgejoin: installing") || script.includes("the installer of cluster")) return "install";
  return "other";
}

/** A site: the app, and machines that boot, fetch their seed, enroll, get approved, report. */
function site(t: TestApp = makeTestApp()) {
  const req = async (method: string, path: string, o: { body?: unknown; headers?: Record<string, string>; from?: string } = {}) => {
    const res = await t.app.request(
      path,
      {
        method,
        headers: { ...(o.body === undefined ? {} : json), ...o.headers },
        ...(o.body === undefined ? {} : { body: typeof o.body === "string" ? o.body : JSON.stringify(o.body) }),
      },
      o.from === undefined ? undefined : from(o.from),
    );
    const text = await res.text();
    let body: Record<string, any> = {};
    try {
      body = JSON.parse(text);
    } catch {
      // a script or YAML
    }
    return { status: res.status, text, body };
  };
  const boot = async (mac: string, query = "&arch=x86_64", o: { from?: string } = {}) =>
    bootKind((await req("GET", `/boot.ipxe?mac=${encodeURIComponent(mac)}${query}`, o)).text);
  const seedToken = async (mac: string, o: { from?: string } = {}) => bootstrapTokenOf((await req("GET", `/cloud-init/${mac}/user-data`, o)).text);
  /** What the neighbour on 127.0.0.2 can do: fetch seeds, boot in any machine's name, enroll. */
  const neighbour = {
    seedToken: (mac: string) => seedToken(mac, { from: neighbourIp }),
    boot: (mac: string, query?: string) => boot(mac, query, { from: neighbourIp }),
    enroll: (body: unknown) => req("POST", "/api/v1/enroll", { body, from: neighbourIp }),
  };
  /** A machine's first boot, seed and enroll: its node id and credential header. */
  const join = async (mac: string) => {
    expect(await boot(mac)).toBe("install");
    const res = await req("POST", "/api/v1/enroll", { body: { token: await seedToken(mac), mac, arch: "x86_64" } });
    expect(res.status, res.text).toBe(201);
    return { id: res.body.node_id as number, auth: { authorization: `Bearer ${res.body.credential as string}` } };
  };
  const approve = (id: number, body: Record<string, unknown> = {}) => req("POST", `/api/v1/nodes/${id}/approve`, { body, headers: admin });
  const nodeConfig = (auth: Record<string, string>) => req("GET", "/api/v1/node/config", { headers: auth });
  const event = (auth: Record<string, string>, type: string, caHash?: string) =>
    req("POST", "/api/v1/node/events", { body: { type, ...(caHash ? { ca_hash: caHash } : {}) }, headers: auth });
  /** join → approve → config → k3s-started → ready: a joined machine and its role. */
  const joined = async (mac: string) => {
    const m = await join(mac);
    expect((await approve(m.id)).status).toBe(200);
    const cfg = await nodeConfig(m.auth);
    expect(cfg.status, cfg.text).toBe(200);
    expect((await event(m.auth, "k3s-started")).status).toBe(202);
    expect((await event(m.auth, "ready", cfg.body.role === "agent" ? undefined : testCaHash)).status).toBe(202);
    return { ...m, role: cfg.body.role as string, config: cfg.body };
  };
  const node = (id: number) => t.db.select().from(machines).where(eq(machines.id, id)).get()!;
  return { ...t, req, boot, seedToken, neighbour, join, approve, nodeConfig, event, joined, node };
}

describe("a second credential for a pending machine (one enrollment per install)", () => {
  it("neighbour fetches the seed and enrolls with {token, mac} only → 409 already_enrolled, nothing issued; the conflict blocks secrets until the admin dismisses it", async () => {
    const s = site();
    // The neighbour's seed fetch: before the machine enrolled (after, the seed carries no token at all).
    await s.boot("52:54:00:00:00:01");
    const stolen = await s.neighbour.seedToken("52:54:00:00:00:01");
    const real = await s.join("52:54:00:00:00:01");
    await expect(s.neighbour.seedToken("52:54:00:00:00:01")).rejects.toThrow(/no bootstrap token/);
    const neighbour = await s.neighbour.enroll({ token: stolen, mac: "52:54:00:00:00:01" });
    expect(neighbour.status).toBe(409);
    expect(neighbour.body).toMatchObject({ error: "already_enrolled" });
    expect(neighbour.body.credential).toBeUndefined();
    const view = (await s.req("GET", `/api/v1/nodes/${real.id}`, { headers: admin })).body;
    expect(view).toMatchObject({ state: "pending", conflicts: [{ source_ip: neighbourIp, facts: null }] });
    // No policy, no plain approve: only an admin who looked.
    expect((await s.approve(real.id)).body).toMatchObject({ error: "unresolved_conflict" });
    expect((await s.approve(real.id, { dismiss_conflicts: true })).status).toBe(200);
    const cfg = await s.nodeConfig(real.auth);
    expect(cfg.status).toBe(200);
    expect(cfg.body.role).toBe("init");
    const audit = s.db.select().from(auditEvents).where(eq(auditEvents.action, "enroll.conflict")).all();
    expect(audit).toEqual([expect.objectContaining({ machineId: real.id, sourceIp: neighbourIp })]);
  });

  it("a conflict after approval → config 202 reason conflict for every credential of that machine, no k3s secrets", async () => {
    const s = site();
    await s.boot("52:54:00:00:00:01");
    const stolen = await s.neighbour.seedToken("52:54:00:00:00:01");
    const real = await s.join("52:54:00:00:00:01");
    await s.approve(real.id);
    expect((await s.neighbour.enroll({ token: stolen, mac: "52:54:00:00:00:01" })).status).toBe(409);
    const cfg = await s.nodeConfig(real.auth);
    expect(cfg.status).toBe(202);
    expect(cfg.body).toMatchObject({ reason: "conflict" });
    expect(cfg.text).not.toContain("token");
  });
});

describe("resetting a joined machine without authentication", () => {
  it("seed fetch + enroll against a joined init → 409, still joined with its credential, boot.ipxe still its disk, quorum ok, no token in its seed", async () => {
    const s = site();
    const init = await s.joined("52:54:00:00:00:01");
    expect(init.role).toBe("init");
    const ud = await s.req("GET", "/cloud-init/52:54:00:00:00:01/user-data", { from: neighbourIp });
    expect(ud.status).toBe(200);
    expect(() => bootstrapTokenOf(ud.text)).toThrow();
    expect(await s.neighbour.boot("52:54:00:00:00:01")).toBe("local_disk");
    expect(s.node(init.id)).toMatchObject({ state: "joined", role: "init", credentialGeneration: 0 });
    expect(await s.boot("52:54:00:00:00:01")).toBe("local_disk");
    expect((await s.nodeConfig(init.auth)).status).toBe(200);
    expect((await s.req("GET", "/api/v1/clusters/1/quorum", { headers: admin })).body.health).toBe("ok");
  });

  it("a token fetched while it was installing, used after it joined → 409 already_enrolled; its credential and seat untouched", async () => {
    const s = site();
    const mac = "52:54:00:00:00:01";
    expect(await s.boot(mac)).toBe("install");
    const stolen = await s.neighbour.seedToken(mac);
    const real = await s.req("POST", "/api/v1/enroll", { body: { token: await s.seedToken(mac), mac, arch: "x86_64" } });
    const auth = { authorization: `Bearer ${real.body.credential}` };
    await s.approve(real.body.node_id);
    expect((await s.nodeConfig(auth)).status).toBe(200);
    await s.event(auth, "k3s-started");
    await s.event(auth, "ready", testCaHash);
    const attempt = await s.neighbour.enroll({ token: stolen, mac });
    expect(attempt.status).toBe(409);
    expect(s.node(real.body.node_id)).toMatchObject({ state: "joined", role: "init", credentialGeneration: 0 });
    expect(await s.boot(mac)).toBe("local_disk");
  });
});

describe("a second cluster-init", () => {
  it("re-enrolling the init while it installs → refused; its k3s-started lands; after the lease, no other machine is given cluster-init", async () => {
    const s = site();
    await s.boot("52:54:00:00:00:01");
    const stolen = await s.neighbour.seedToken("52:54:00:00:00:01");
    const init = await s.join("52:54:00:00:00:01");
    await s.approve(init.id);
    const cfg = await s.nodeConfig(init.auth);
    expect(parse(cfg.body.config_yaml)).toMatchObject({ "cluster-init": true });
    expect((await s.neighbour.enroll({ token: stolen, mac: "52:54:00:00:00:01" })).status).toBe(409);
    expect((await s.event(init.auth, "k3s-started")).status).toBe(202);
    s.clock.advance(s.config.roleLeaseMs * 2);
    const next = await s.join("52:54:00:00:00:02");
    await s.approve(next.id, { role: "server" });
    const other = await s.nodeConfig(next.auth);
    expect(other.text).not.toContain("cluster-init");
    expect(s.node(init.id)).toMatchObject({ role: "init" });
  });
});

describe("anonymous sightings never overwrite identity", () => {
  it("boot with the machine's MAC, another UUID, serial and arm64 → identity unchanged, disagreement audited, x86 binary kept, enroll never refused", async () => {
    const s = site();
    const m = await s.joined("52:54:00:00:00:01");
    const before = s.node(m.id);
    await s.neighbour.boot("52:54:00:00:00:01", "&arch=arm64&uuid=11111111-2222-4333-8444-555555555555&serial=EVIL");
    await s.req("GET", "/cloud-init/52:54:00:00:00:01/meta-data", { from: neighbourIp });
    expect(s.node(m.id)).toMatchObject({ arch: before.arch, uuid: before.uuid, serial: before.serial, lastIp: before.lastIp });
    expect(s.node(m.id).lastIp).not.toBe(neighbourIp);
    expect(s.node(m.id).reported).toMatchObject({ ip: neighbourIp, arch: "arm64", serial: "EVIL" });
    expect(s.db.select().from(auditEvents).where(eq(auditEvents.action, "machine.sighting_disagrees")).all()).toHaveLength(1);
    const cfg = await s.nodeConfig(m.auth);
    expect(cfg.status).toBe(200);
    expect(cfg.body.install.binary_url ?? "k3s").not.toContain("arm64");
  });
});

describe("decisions revoke credentials", () => {
  it("reject: the credential and a token fetched before the reject are both dead", async () => {
    const s = site();
    const mac = "52:54:00:00:00:01";
    await s.boot(mac);
    const early = await s.neighbour.seedToken(mac);
    const m = await s.join(mac);
    expect((await s.req("POST", `/api/v1/nodes/${m.id}/reject`, { body: {}, headers: admin })).status).toBe(200);
    expect((await s.nodeConfig(m.auth)).status).toBe(401);
    const late = await s.neighbour.enroll({ token: early, mac });
    expect(late.status).toBe(403);
    expect(late.body.credential).toBeUndefined();
  });

  it("retire and a lease take-back bump the credential generation", async () => {
    const s = site();
    const a = await s.join("52:54:00:00:00:01");
    await s.approve(a.id);
    expect((await s.nodeConfig(a.auth)).status).toBe(200);
    s.clock.advance(s.config.roleLeaseMs + 1);
    expect((await s.req("GET", "/api/v1/clusters/1/quorum", { headers: admin })).status).toBe(200);
    expect(s.node(a.id)).toMatchObject({ state: "failed", credentialGeneration: 1 });
    const b = await s.join("52:54:00:00:00:02");
    await s.req("POST", `/api/v1/nodes/${b.id}/retire`, { body: {}, headers: admin });
    expect(s.node(b.id).credentialGeneration).toBe(1);
    expect((await s.nodeConfig(b.auth)).status).toBe(401);
  });

  it("an event whose credential is revoked while its body is in flight → 401, nothing applied or stored", async () => {
    const s = site();
    const m = await s.join("52:54:00:00:00:01");
    await s.approve(m.id);
    expect((await s.nodeConfig(m.auth)).status).toBe(200);
    let push!: (chunk: string) => void;
    let end!: () => void;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        push = (chunk) => controller.enqueue(new TextEncoder().encode(chunk));
        end = () => controller.close();
      },
    });
    const pending = s.app.request("/api/v1/node/events", {
      method: "POST",
      headers: { ...json, ...m.auth },
      body,
      duplex: "half",
    } as RequestInit);
    push('{"type":"k3s-');
    await new Promise((r) => setTimeout(r, 20));
    expect((await s.req("POST", `/api/v1/nodes/${m.id}/retire`, { body: {}, headers: admin })).status).toBe(200);
    push('started"}');
    end();
    const res = await pending;
    expect(res.status).toBe(401);
    expect(s.db.select().from(nodeEvents).where(eq(nodeEvents.machineId, m.id)).all()).toHaveLength(0);
    expect(s.node(m.id).k3sStartedAt).toBeNull();
  });

  it("an event the server refuses (409: no seat yet, or a server whose CA is not the cluster's) → not stored as if it happened", async () => {
    const s = site();
    // app.request has no socket address: joiners reach the servers through the registration address.
    await s.req("PATCH", "/api/v1/clusters/1", { body: { servers: 3, registration_address: "10.0.0.10" }, headers: admin });
    const init = await s.joined("52:54:00:00:00:01");
    const early = await s.join("52:54:00:00:00:02");
    await s.approve(early.id, { role: "server" });
    // Approved, config not asked yet: it holds no seat, so k3s cannot have started on one.
    const noSeat = await s.event(early.auth, "k3s-started");
    expect(noSeat.status).toBe(409);
    expect(s.node(early.id)).toMatchObject({ k3sStartedAt: null, role: null });
    expect((await s.nodeConfig(early.auth)).status).toBe(200);
    expect((await s.event(early.auth, "k3s-started")).status).toBe(202);
    const foreign = await s.event(early.auth, "ready", "f".repeat(64));
    expect(foreign.status).toBe(409);
    expect(s.node(early.id)).toMatchObject({ state: "provisioning", readyAt: null, splitBrainRisk: true });
    const stored = s.db.select().from(nodeEvents).where(eq(nodeEvents.machineId, early.id)).all();
    expect(stored.map((e) => e.type)).toEqual(["k3s-started"]);
    expect(s.db.select().from(auditEvents).where(eq(auditEvents.action, "quorum.split_brain_risk")).all()).toHaveLength(1);
    expect(s.db.select().from(clusters).get()!.caHash).toBe(testCaHash);
    expect(s.node(init.id).state).toBe("joined");
  });
});

describe("approve into another cluster", () => {
  it("the init of one cluster approved into another that has an init → 409 with a clear message, never a 500; no second cluster-init", async () => {
    const s = site();
    const other = await s.req("POST", "/api/v1/clusters", { body: { name: "site-b" }, headers: admin });
    const b = other.body.id as number;
    const initA = await s.joined("52:54:00:00:00:01");
    // Its seat kept after a failure (a server that ran k3s keeps it): still a seat holder.
    s.db.update(machines).set({ state: "failed" }).where(eq(machines.id, initA.id)).run();
    const res = await s.approve(initA.id, { cluster_id: b });
    expect(res.status).toBe(409);
    expect(res.body.message).toMatch(/retire it first/);
    expect(s.node(initA.id)).toMatchObject({ clusterId: 1, role: "init" });
    // Retired first, it may go: no seat travels along.
    await s.req("POST", `/api/v1/nodes/${initA.id}/retire`, { body: {}, headers: admin });
    expect((await s.approve(initA.id, { cluster_id: b })).body).toMatchObject({ cluster_id: b, role: null });
  });

  it("the init of a formed cluster approved into an empty one → 409, never a 500; neither cluster gets a second cluster-init", async () => {
    const s = site();
    const b = (await s.req("POST", "/api/v1/clusters", { body: { name: "site-b" }, headers: admin })).body.id as number;
    await s.req("PATCH", "/api/v1/clusters/1", { body: { servers: 3 }, headers: admin });
    const initA = await s.joined("52:54:00:00:00:01");
    s.db.update(machines).set({ state: "failed" }).where(eq(machines.id, initA.id)).run();
    const res = await s.approve(initA.id, { cluster_id: b });
    expect(res.status).toBe(409);
    expect(res.body.error).toBe("conflict");
    expect(s.node(initA.id)).toMatchObject({ clusterId: 1, role: "init" });
    // The next server of the formed cluster joins it; the empty one has no init carried into it.
    const next = await s.join("52:54:00:00:00:02");
    await s.approve(next.id, { role: "server" });
    const cfg = await s.nodeConfig(next.auth);
    expect(cfg.text).not.toContain("cluster-init");
    expect(s.db.select().from(machines).where(eq(machines.clusterId, b)).all()).toEqual([]);
  });
});

describe("a one-server cluster whose init is gone is no dead end", () => {
  it("init retired → agents get 202 waiting_for_reform (never 500); reform refused while a server holds a seat; after reform the next approved machine is init", async () => {
    const s = site();
    // app.request has no socket address: joiners reach the servers through the registration address.
    await s.req("PATCH", "/api/v1/clusters/1", { body: { registration_address: "10.0.0.10" }, headers: admin });
    const init = await s.joined("52:54:00:00:00:01");
    const agent = await s.joined("52:54:00:00:00:02");
    expect(agent.role).toBe("agent");
    expect((await s.req("POST", "/api/v1/clusters/1/reform", { headers: admin })).status).toBe(409);
    await s.req("POST", `/api/v1/nodes/${init.id}/retire`, { body: {}, headers: admin });
    const poll = await s.nodeConfig(agent.auth);
    expect(poll.status).toBe(202);
    expect(poll.body.reason).toBe("waiting_for_reform");
    const newcomer = await s.join("52:54:00:00:00:03");
    await s.approve(newcomer.id);
    expect((await s.nodeConfig(newcomer.auth)).body.reason).toBe("waiting_for_reform");
    const reform = await s.req("POST", "/api/v1/clusters/1/reform", { headers: admin });
    expect(reform.status).toBe(200);
    const cfg = await s.nodeConfig(newcomer.auth);
    expect(cfg.status).toBe(200);
    expect(cfg.body.role).toBe("init");
    expect(s.db.select().from(auditEvents).where(eq(auditEvents.action, "cluster.reformed")).all()).toHaveLength(1);
  });

  it("init re-imaged (the admin's reinstall) in a one-server cluster → its seat freed, agents wait for a reform, never 500", async () => {
    const s = site();
    await s.req("PATCH", "/api/v1/clusters/1", { body: { registration_address: "10.0.0.10" }, headers: admin });
    const init = await s.joined("52:54:00:00:00:01");
    const agent = await s.joined("52:54:00:00:00:02");
    const re = await s.req("POST", `/api/v1/nodes/${init.id}/reinstall`, { body: {}, headers: admin });
    expect(re.body).toMatchObject({ state: "pending", role: null });
    expect(await s.boot("52:54:00:00:00:01")).toBe("install");
    expect((await s.nodeConfig(agent.auth)).body.reason).toBe("waiting_for_reform");
  });
});

describe("unbounded anonymous storage", () => {
  function limitedApp() {
    const db = openDb(":memory:");
    const config = testConfig();
    const clock = steppableClock();
    ensureDefaultCluster(db, { k3sVersion: config.k3sVersion, now: clock() });
    const deps = makeDeps({
      db,
      config,
      clock,
      logger: pino({ level: "silent" }),
      caCertPem: testCaCertPem,
      anonymousLimits: {
        newMachinesPerSource: { burst: 50, perMinute: 1 },
        newMachinesTotal: { burst: 80, perMinute: 1 },
        refusalAuditsPerMachine: { burst: 5, perMinute: 1 },
      },
    });
    const app = asOverTls(createApp(deps));
    return { app, db, config, clock, deps, keyring: deps.keyring } as TestApp;
  }

  it("new MACs beyond the first-sighting bound → not stored (the console says why), the rest of the LAN unaffected later", async () => {
    const s = site(limitedApp());
    let stored = 0;
    for (let i = 1; i <= 120; i++) {
      const res = await s.req("GET", `/boot.ipxe?mac=02:00:00:00:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`);
      expect(res.status).toBe(200);
      if (!res.text.includes("too many new machines")) stored++;
    }
    expect(stored).toBe(50);
    expect(s.db.select().from(machines).all()).toHaveLength(50);
    expect((await s.req("GET", "/cloud-init/02:00:00:00:09:99/user-data")).status).toBe(429);
  });

  it("the neighbour's 150 new MACs → the admin's machine list comes a page at a time (100, then a cursor), not everything at once", async () => {
    const s = site();
    for (let i = 1; i <= 150; i++) await s.neighbour.boot(`02:00:00:00:00:${i.toString(16).padStart(2, "0")}`);
    const first = await s.req("GET", "/api/v1/nodes", { headers: admin });
    expect(first.body.nodes).toHaveLength(100);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const second = await s.req("GET", `/api/v1/nodes?cursor=${first.body.next_cursor}`, { headers: admin });
    expect(second.body).toMatchObject({ next_cursor: null });
    expect(second.body.nodes).toHaveLength(50);
    const events = await s.req("GET", "/api/v1/events?limit=1000", { headers: admin });
    expect(events.status).toBe(200);
    expect((await s.req("GET", "/api/v1/nodes?limit=5000", { headers: admin })).status).toBe(422);
  });

  it("~200 junk enrolls against one machine → a bounded number of conflicts and audit records; its trail stays in view", async () => {
    const s = site(limitedApp());
    await s.boot("52:54:00:00:00:01");
    const token = await s.seedToken("52:54:00:00:00:01");
    const m = await s.join("52:54:00:00:00:01");
    for (let i = 0; i < 200; i++) await s.neighbour.enroll({ token, mac: "52:54:00:00:00:01" });
    expect(s.node(m.id).conflicts.length).toBeLessThanOrEqual(20);
    const audits = s.db.select().from(auditEvents).where(eq(auditEvents.machineId, m.id)).all();
    expect(audits.length).toBeLessThan(20);
    expect(audits.some((a) => a.action === "machine.enrolled")).toBe(true);
  });

  // ~600 requests and 2.3 MB of uploads: 1.6 s here, 24 s on a runner at load 13.
  it("installer log uploads with the progress token → the newest kept within a per-machine bound; events bounded too", { timeout: 60_000 }, async () => {
    const s = site();
    const text = (await s.req("GET", "/cloud-init/52:54:00:00:00:01/user-data")).text;
    const ai = (parse(text) as { autoinstall: { reporting: { edgejoin: { endpoint: string } } } }).autoinstall;
    const events = new URL(ai.reporting.edgejoin.endpoint);
    const base = `${events.pathname}${events.search}`;
    const log = `${events.pathname}/log${events.search}`;
    for (let i = 0; i < 8; i++) {
      const res = await s.app.request(`${log}&file=f${i}.log`, { method: "POST", body: `${String(i)}${"x".repeat(290 * 1024)}` });
      expect(res.status).toBe(202);
    }
    const logs = s.db.select().from(nodeEvents).where(eq(nodeEvents.type, "log")).all();
    const bytes = logs.reduce((n, e) => n + Buffer.byteLength(e.detail ?? ""), 0);
    expect(bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(logs.at(-1)!.detail).toMatch(/^f7\.log\n7/);
    for (let i = 0; i < 520; i++) await s.app.request(base, { method: "POST", body: JSON.stringify({ name: `step ${i}`, event_type: "start" }) });
    expect(s.db.select().from(nodeEvents).where(eq(nodeEvents.source, "installer")).all().length).toBeLessThanOrEqual(500);
    // Failures are audited, within the refusal bounds: the token is in the public seed.
    for (let i = 0; i < 60; i++) await s.app.request(base, { method: "POST", body: JSON.stringify({ name: "x", event_type: "finish", result: "FAIL" }) });
    expect(s.db.select().from(auditEvents).where(eq(auditEvents.action, "machine.install_failed")).all().length).toBeLessThanOrEqual(20);
  });

  it("a later seed fetch (the neighbour's) does not break the installer's progress token", async () => {
    const s = site();
    const endpoint = async (o: { from?: string } = {}) => {
      const ud = await s.req("GET", "/cloud-init/52:54:00:00:00:01/user-data", o);
      return (parse(ud.text) as any).autoinstall.reporting.edgejoin.endpoint as string;
    };
    const installer = new URL(await endpoint());
    await endpoint({ from: neighbourIp });
    const res = await s.app.request(`${installer.pathname}${installer.search}`, { method: "POST", body: JSON.stringify({ name: "x", event_type: "start" }) });
    expect(res.status).toBe(202);
  });
});

describe("injection by admin input and 500s", () => {
  it.each([";", "&&", "||", "#", "#comment", "a&&b"])("kernel_args with %j → 422, cluster unchanged", async (word) => {
    const s = site();
    const res = await s.req("PATCH", "/api/v1/clusters/1", {
      body: { installer: { kind: "ubuntu-autoinstall", kernel_url: "k", initrd_urls: ["i"], kernel_args: `ip=dhcp ${word} shell` } },
      headers: admin,
    });
    expect(res.status).toBe(422);
    expect(s.db.select().from(clusters).get()!.installer.kernel_args).toBe("ip=dhcp");
  });

  it("enroll with facts nested 30,000 deep → 422, not 500; nothing stored", async () => {
    const s = site();
    await s.boot("52:54:00:00:00:01");
    const token = await s.seedToken("52:54:00:00:00:01");
    const deep = `{"x":${"[".repeat(30_000)}${"]".repeat(30_000)}}`;
    const res = await s.neighbour.enroll(`{"token":"${token}","mac":"52:54:00:00:00:01","facts":${deep}}`);
    expect(res.status).toBe(422);
    expect(s.db.select().from(machines).get()!.state).toBe("discovered");
  });
});

describe("leases and clock steps", () => {
  it("the wall clock steps a month forward → no unstarted seat is taken back (leases run on the lease clock)", async () => {
    const db = openDb(":memory:");
    const config = testConfig();
    const wall = steppableClock();
    const lease = steppableClock();
    ensureDefaultCluster(db, { k3sVersion: config.k3sVersion, now: wall() });
    const deps = makeDeps({ db, config, clock: wall, leaseClock: lease, logger: pino({ level: "silent" }), caCertPem: testCaCertPem });
    const s = site({ app: asOverTls(createApp(deps)), db, config, clock: wall, deps, keyring: deps.keyring } as TestApp);
    const m = await s.join("52:54:00:00:00:01");
    await s.approve(m.id);
    expect((await s.nodeConfig(m.auth)).status).toBe(200);
    // An RTC-less box syncing NTP a month after its last shutdown; credentials (a year) still valid.
    wall.advance(30 * 86_400_000);
    expect((await s.req("GET", "/api/v1/clusters/1/quorum", { headers: admin })).status).toBe(200);
    expect(s.node(m.id)).toMatchObject({ role: "init", state: "provisioning" });
    expect((await s.event(m.auth, "k3s-started")).status).toBe(202);
  });
});

describe("the installer runs once per install", () => {
  it("installer's final finish SUCCESS → later PXE boots get the disk (a power blip while pending no longer wipes it); failed or an admin's reinstall → installer again", async () => {
    const s = site();
    const mac = "52:54:00:00:00:01";
    expect(await s.boot(mac)).toBe("install");
    const text = (await s.req("GET", `/cloud-init/${mac}/user-data`)).text;
    const url = new URL((parse(text) as any).autoinstall.reporting.edgejoin.endpoint as string);
    const post = (body: unknown) => s.app.request(`${url.pathname}${url.search}`, { method: "POST", body: JSON.stringify(body) });
    expect((await post({ name: "subiquity/Install/install/curthooks", event_type: "finish", result: "SUCCESS" })).status).toBe(202);
    expect(await s.boot(mac)).toBe("install");
    expect((await post({ name: "subiquity/Install/install", event_type: "finish", result: "SUCCESS" })).status).toBe(202);
    expect(await s.boot(mac)).toBe("local_disk");
    const res = await enroll(s, bootstrapTokenOf(text), { mac, uuid: undefined, serial: undefined });
    expect(res.status).toBe(201);
    const id = ((await res.json()) as { node_id: number }).node_id;
    expect(await s.boot(mac)).toBe("local_disk");
    s.db.update(machines).set({ state: "failed" }).where(eq(machines.id, id)).run();
    expect(await s.boot(mac)).toBe("install");
    s.db.update(machines).set({ state: "pending" }).where(eq(machines.id, id)).run();
    expect(await s.boot(mac)).toBe("local_disk");
    expect((await postJson(s, `/api/v1/nodes/${id}/reinstall`, {}, admin)).status).toBe(200);
    expect(await s.boot(mac)).toBe("install");
  });
});
