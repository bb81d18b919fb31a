import { describe, expect, it } from "vitest";
import { and, eq } from "drizzle-orm";
import { auditEvents, clusters, machines } from "../../db/schema.js";
import { ApiError } from "../../server/errors.js";
import { answerConfigRequest, answerNodeEvent, type NodeConfigDecision } from "../../server/http/node.js";
import { retireMachine } from "../../server/store/decisions.js";
import { getQuorum } from "../../server/store/quorum.js";
import { makeTestApp } from "../helpers/app.js";
import { addApproved, parseConfigBody, shapeCluster, testCaHash } from "./fixtures.js";

const lease = 20 * 60_000;

function setup(servers: number, registrationAddress: string | null = null) {
  const t = makeTestApp();
  const cluster = shapeCluster(t.db, 1, { servers, registrationAddress });
  let n = 0;
  const approve = (o: { preference?: "auto" | "server" | "agent"; hostname?: string } = {}) =>
    addApproved(t.db, { n: ++n, clusterId: cluster.id, now: t.clock(), ...o });
  const ask = (id: number) => answerConfigRequest(t.deps, { id });
  const event = (id: number, type: string, caHash?: string) => answerNodeEvent(t.deps, { id }, { type, caHash });
  const machine = (id: number) => t.db.select().from(machines).where(eq(machines.id, id)).get()!;
  const quorum = () => getQuorum(t.deps.db, cluster.id, { now: t.clock(), leaseMs: t.deps.config.roleLeaseMs });
  return { ...t, cluster, approve, ask, event, machine, quorum };
}

function config(d: NodeConfigDecision) {
  if (d.kind !== "config") throw new Error(`expected a config, got wait ${d.reason}`);
  return { body: d.body, k3s: parseConfigBody(d.body) };
}

function apiErrorOf(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error("expected an ApiError");
}

/** Bring a machine from its config to `ready`. */
function join(s: ReturnType<typeof setup>, id: number, caHash?: string) {
  s.event(id, "k3s-started");
  s.event(id, "ready", caHash);
}

describe("role assignment", () => {
  it("three desired servers → init, then joining servers one at a time after each is ready, then agents", () => {
    const s = setup(3);
    const [a, b, c, d] = [s.approve(), s.approve(), s.approve(), s.approve()];

    const init = config(s.ask(a.id));
    expect(init.body.role).toBe("init");
    expect(init.k3s["cluster-init"]).toBe(true);
    expect(s.machine(a.id).state).toBe("provisioning");

    expect(s.ask(b.id)).toEqual({ kind: "wait", reason: "waiting_for_init", retryAfter: 15 });
    expect(s.ask(d.id)).toMatchObject({ kind: "wait", reason: "waiting_for_init" });
    s.event(a.id, "k3s-started");
    expect(s.ask(b.id)).toMatchObject({ kind: "wait", reason: "waiting_for_init" });
    s.event(a.id, "ready", testCaHash);
    expect(s.machine(a.id).state).toBe("joined");

    const joiner = config(s.ask(b.id));
    expect(joiner.body.role).toBe("server");
    expect(joiner.k3s).toMatchObject({ server: `https://${a.lastIp}:6443`, token: `K10${testCaHash}::server:${s.cluster.serverToken}` });
    expect(joiner.k3s["cluster-init"]).toBeUndefined();
    expect(s.ask(c.id)).toMatchObject({ kind: "wait", reason: "waiting_for_previous_server" });
    expect(s.ask(d.id)).toMatchObject({ kind: "wait", reason: "waiting_for_previous_server" });

    join(s, b.id, testCaHash);
    expect(config(s.ask(c.id)).body.role).toBe("server");
    // All server seats are held: the fourth machine is an agent as soon as a server is ready.
    const agent = config(s.ask(d.id));
    expect(agent.body.role).toBe("agent");
    expect(agent.k3s.token).toBe(`K10${testCaHash}::node:${s.cluster.agentToken}`);
    expect(agent.body.config_yaml).not.toContain(s.cluster.serverToken);
    expect(agent.body.install.env.INSTALL_K3S_EXEC).toBe("agent");

    expect(s.quorum().health).toBe("forming");
    join(s, c.id, testCaHash);
    const q = s.quorum();
    expect(q.health).toBe("ok");
    expect(q.servers.map((x) => [x.machine_id, x.role, x.state])).toEqual([
      [a.id, "init", "joined"],
      [b.id, "server", "joined"],
      [c.id, "server", "joined"],
    ]);
    expect(q.agents.total).toBe(1);
  });

  it("a machine asking again → the same role and byte-identical config", () => {
    const s = setup(1);
    const a = s.approve();
    const first = config(s.ask(a.id)).body;
    s.clock.advance(60_000);
    expect(config(s.ask(a.id)).body).toEqual(first);
    s.event(a.id, "k3s-started");
    s.event(a.id, "ready", testCaHash);
    expect(config(s.ask(a.id)).body).toEqual(first);
  });

  it("approved as agent → never a server, even as the first machine", () => {
    const s = setup(3);
    const pinnedAgent = s.approve({ preference: "agent" });
    expect(s.ask(pinnedAgent.id)).toMatchObject({ kind: "wait", reason: "waiting_for_server" });
    const a = s.approve();
    expect(config(s.ask(a.id)).body.role).toBe("init");
    join(s, a.id, testCaHash);
    expect(config(s.ask(pinnedAgent.id)).body.role).toBe("agent");
  });

  it("approved as server while an auto machine asks → the server-approved machine gets the free seat", () => {
    const s = setup(3);
    const a = s.approve();
    config(s.ask(a.id));
    const wantsServer = s.approve({ preference: "server" });
    const auto = s.approve();
    expect(s.ask(wantsServer.id)).toMatchObject({ kind: "wait", reason: "waiting_for_init" });
    join(s, a.id, testCaHash);
    expect(s.ask(auto.id)).toMatchObject({ kind: "wait", reason: "waiting_for_role" });
    expect(s.ask(wantsServer.id)).toMatchObject({ kind: "config" });
    expect(s.machine(wantsServer.id).role).toBe("server");
    expect(s.ask(auto.id)).toMatchObject({ kind: "wait", reason: "waiting_for_previous_server" });
    // A server-approved machine that stopped asking does not hold the seat for ever.
    const silent = s.approve({ preference: "server" });
    s.db
      .update(machines)
      .set({ lastSeenAt: s.clock() - 61_000 })
      .where(eq(machines.id, silent.id))
      .run();
    join(s, wantsServer.id, testCaHash);
    expect(config(s.ask(auto.id)).body.role).toBe("server");
  });

  it("approved with a hostname → it is the node name; a second machine with the same hostname gets the pattern", () => {
    const s = setup(1);
    const a = s.approve({ hostname: "edge-01" });
    expect(config(s.ask(a.id)).k3s["node-name"]).toBe("edge-01");
    join(s, a.id, testCaHash);
    // approve refuses a duplicate; a machine row carrying one anyway (e.g. from an older version) must not reuse it.
    const b = s.approve({ hostname: "edge-01" });
    expect(config(s.ask(b.id)).k3s["node-name"]).toBe(`node-${b.mac.replaceAll(":", "")}`);
  });

  it("registration address set → joiners and agents connect to it, servers carry it as a TLS SAN", () => {
    const s = setup(3, "k3s.site.example");
    const [a, b] = [s.approve(), s.approve()];
    expect(config(s.ask(a.id)).k3s["tls-san"]).toEqual(["k3s.site.example", a.lastIp]);
    join(s, a.id);
    // Without a CA hash from the init server the plain token is all there is.
    expect(config(s.ask(b.id)).k3s).toMatchObject({ server: "https://k3s.site.example:6443", token: s.cluster.serverToken });
  });

  it("pending machine → wait for approval; rejected and retired → 403 codes the agent stops on", () => {
    const s = setup(1);
    const a = s.approve();
    s.db.update(machines).set({ state: "pending" }).where(eq(machines.id, a.id)).run();
    expect(s.ask(a.id)).toEqual({ kind: "wait", reason: "pending_approval", retryAfter: 30 });
    s.db.update(machines).set({ state: "rejected" }).where(eq(machines.id, a.id)).run();
    expect(apiErrorOf(() => s.ask(a.id)).code).toBe("machine_rejected");
    s.db.update(machines).set({ state: "retired" }).where(eq(machines.id, a.id)).run();
    expect(apiErrorOf(() => s.ask(a.id)).code).toBe("machine_retired");
  });
});

describe("several clusters", () => {
  it("two clusters → each has its own init server, seats never cross", () => {
    const s = setup(1);
    const other = s.db
      .insert(clusters)
      .values({ ...s.cluster, id: undefined, name: "site-b", isDefault: false, serverToken: "b".repeat(64), agentToken: "c".repeat(64) })
      .returning()
      .get();
    const a = s.approve();
    const b = addApproved(s.db, { n: 900, clusterId: other.id, now: s.clock() });
    expect(config(s.ask(a.id)).body.role).toBe("init");
    const bConfig = config(s.ask(b.id));
    expect(bConfig.body.role).toBe("init");
    expect(bConfig.k3s.token).toBe("b".repeat(64));
    expect(s.quorum().servers.map((x) => x.machine_id)).toEqual([a.id]);
    expect(getQuorum(s.deps.db, other.id, { now: s.clock(), leaseMs: s.deps.config.roleLeaseMs }).servers.map((x) => x.machine_id)).toEqual([b.id]);
  });
});

describe("leases", () => {
  it("init without k3s-started within the lease → seat taken back, machine failed, the next becomes init, the first gets 403 seat_revoked", () => {
    const s = setup(3);
    const [a, b] = [s.approve(), s.approve()];
    expect(config(s.ask(a.id)).body.role).toBe("init");
    s.clock.advance(lease - 1);
    expect(s.ask(b.id)).toMatchObject({ kind: "wait", reason: "waiting_for_init" });
    s.clock.advance(1);
    expect(config(s.ask(b.id)).body.role).toBe("init");
    expect(s.machine(a.id)).toMatchObject({ state: "failed", role: null });
    expect(apiErrorOf(() => s.ask(a.id))).toMatchObject({ code: "seat_revoked", status: 403 });
    const revoked = s.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "quorum.seat_revoked"), eq(auditEvents.machineId, a.id)))
      .all();
    expect(revoked).toHaveLength(1);
    expect(revoked[0]!.detail).toMatchObject({ role: "init", reason: "lease_expired" });
  });

  it("a revoked machine that reports k3s-started anyway → flagged split_brain_risk, audited, refused, CA compared", () => {
    const s = setup(1);
    const [a, b] = [s.approve(), s.approve()];
    config(s.ask(a.id));
    s.clock.advance(lease);
    config(s.ask(b.id)); // b is the init server now
    join(s, b.id, testCaHash);

    expect(apiErrorOf(() => s.event(a.id, "k3s-started")).code).toBe("seat_revoked");
    const otherCa = "d".repeat(64);
    expect(apiErrorOf(() => s.event(a.id, "ready", otherCa)).code).toBe("seat_revoked");
    expect(s.machine(a.id)).toMatchObject({ splitBrainRisk: true, state: "failed", role: null });
    const flags = s.db.select().from(auditEvents).where(eq(auditEvents.action, "quorum.split_brain_risk")).all();
    expect(flags).toHaveLength(2);
    expect(flags[1]!.detail).toMatchObject({ ca_hash: otherCa, init_ca_hash: testCaHash, ca_matches_init: false });
    const q = s.quorum();
    expect(q.health).toBe("split_brain_risk");
    expect(q.servers_health).toBe("ok");
    expect(q.split_brain_risk).toEqual([a.id]);
  });

  it("a lease that expires while the machine is silent → its late k3s-started is flagged even before anyone else asks", () => {
    const s = setup(1);
    const a = s.approve();
    config(s.ask(a.id));
    s.clock.advance(lease + 1);
    expect(apiErrorOf(() => s.event(a.id, "k3s-started")).code).toBe("seat_revoked");
    expect(s.machine(a.id).splitBrainRisk).toBe(true);
  });

  it("init that reported k3s-started → never replaced, however long it takes to be ready", () => {
    const s = setup(3);
    const [a, b] = [s.approve(), s.approve()];
    config(s.ask(a.id));
    s.event(a.id, "k3s-started");
    s.clock.advance(10 * lease);
    expect(s.ask(b.id)).toMatchObject({ kind: "wait", reason: "waiting_for_init" });
    expect(s.machine(a.id).role).toBe("init");
  });

  it("agent without k3s-started within the lease → its seat is taken back too", () => {
    const s = setup(1);
    const [a, b] = [s.approve(), s.approve()];
    config(s.ask(a.id));
    join(s, a.id);
    expect(config(s.ask(b.id)).body.role).toBe("agent");
    s.clock.advance(lease);
    expect(apiErrorOf(() => s.ask(b.id)).code).toBe("seat_revoked");
  });

  it("failure reported before k3s ran → seat goes to the next machine at once", () => {
    const s = setup(3);
    const [a, b] = [s.approve(), s.approve()];
    config(s.ask(a.id));
    s.event(a.id, "failed");
    expect(s.machine(a.id)).toMatchObject({ state: "failed", role: null });
    expect(config(s.ask(b.id)).body.role).toBe("init");
  });
});

describe("retire, refill, re-image", () => {
  function formed(servers: number) {
    const s = setup(servers);
    const ids: number[] = [];
    for (let i = 0; i < servers; i++) {
      const m = s.approve();
      ids.push(m.id);
      config(s.ask(m.id));
      join(s, m.id, testCaHash);
    }
    return { s, ids };
  }

  it("retiring a joined server → quorum degraded, its seat goes to the next machine without a role", () => {
    const { s, ids } = formed(3);
    expect(s.quorum().health).toBe("ok");
    const agent = s.approve();
    expect(config(s.ask(agent.id)).body.role).toBe("agent");

    retireMachine(s.db, ids[1]!, { now: s.clock(), actor: "admin" });
    expect(s.machine(ids[1]!)).toMatchObject({ state: "retired", role: null });
    expect(s.quorum().health).toBe("degraded");
    // The agent keeps its seat; a newcomer takes the free server seat.
    expect(config(s.ask(agent.id)).body.role).toBe("agent");
    const newcomer = s.approve();
    const cfg = config(s.ask(newcomer.id));
    expect(cfg.body.role).toBe("server");
    expect(cfg.k3s["cluster-init"]).toBeUndefined();
    join(s, newcomer.id, testCaHash);
    expect(s.quorum().health).toBe("ok");
  });

  it("retiring the init server after it ran → nobody is ever given cluster-init again", () => {
    const { s, ids } = formed(3);
    retireMachine(s.db, ids[0]!, { now: s.clock(), actor: "admin" });
    const m = s.approve();
    const cfg = config(s.ask(m.id));
    expect(cfg.body.role).toBe("server");
    expect(cfg.k3s["cluster-init"]).toBeUndefined();
    expect(cfg.k3s.server).toBe(`https://${s.machine(ids[1]!).lastIp}:6443`);
  });

  it("init server asking again after others joined (re-imaged) → rendered as a joining server through another server", () => {
    const { s, ids } = formed(3);
    // Re-imaged: it came back through approval and asks for its config from scratch.
    s.db.update(machines).set({ state: "approved" }).where(eq(machines.id, ids[0]!)).run();
    const cfg = config(s.ask(ids[0]!));
    expect(cfg.body.role).toBe("init");
    expect(cfg.body.install.env.INSTALL_K3S_EXEC).toBe("server");
    expect(cfg.k3s["cluster-init"]).toBeUndefined();
    expect(cfg.k3s.server).toBe(`https://${s.machine(ids[1]!).lastIp}:6443`);
    expect(cfg.k3s.token).toBe(`K10${testCaHash}::server:${s.cluster.serverToken}`);
    // Re-installing, it holds its seat (k3s ran before) and counts as not ready until it says so.
    expect(s.machine(ids[0]!)).toMatchObject({ role: "init", state: "provisioning" });
    s.clock.advance(2 * lease);
    expect(s.machine(ids[0]!).role).toBe("init");
    expect(s.quorum().servers_ready).toBe(2);
    s.event(ids[0]!, "ready", testCaHash);
    expect(s.quorum().health).toBe("ok");
  });

  it("a server re-imaged while another server is joining → waits for it (one etcd learner at a time)", () => {
    const { s, ids } = formed(3);
    shapeCluster(s.db, s.cluster.id, { servers: 5 });
    const joining = s.approve();
    expect(config(s.ask(joining.id)).body.role).toBe("server");
    s.db.update(machines).set({ state: "approved" }).where(eq(machines.id, ids[1]!)).run();
    expect(s.ask(ids[1]!)).toMatchObject({ kind: "wait", reason: "waiting_for_previous_server" });
    join(s, joining.id, testCaHash);
    expect(config(s.ask(ids[1]!)).body.role).toBe("server");
  });

  it("init server re-imaged while the other servers are down (failed) → still never cluster-init again", () => {
    const { s, ids } = formed(3);
    for (const id of ids.slice(1)) s.db.update(machines).set({ state: "failed" }).where(eq(machines.id, id)).run();
    s.db.update(machines).set({ state: "approved" }).where(eq(machines.id, ids[0]!)).run();
    const cfg = config(s.ask(ids[0]!));
    expect(cfg.k3s["cluster-init"]).toBeUndefined();
    expect(cfg.k3s.server).toBe(`https://${s.machine(ids[1]!).lastIp}:6443`);
    expect(s.quorum().health).toBe("lost");
  });

  it("a server reporting ready with a CA that is not the cluster's → flagged", () => {
    const { s } = formed(1);
    shapeCluster(s.db, s.cluster.id, { servers: 3 });
    const m = s.approve();
    config(s.ask(m.id));
    s.event(m.id, "k3s-started");
    expect(apiErrorOf(() => s.event(m.id, "ready", "e".repeat(64))).code).toBe("conflict");
    expect(s.machine(m.id)).toMatchObject({ splitBrainRisk: true, state: "provisioning" });
    expect(s.quorum().health).toBe("split_brain_risk");
  });

  it("exactly one init per cluster, whatever writes the rows → the unique index refuses a second", () => {
    const { s, ids } = formed(1);
    const m = s.approve();
    expect(() => s.db.update(machines).set({ role: "init" }).where(eq(machines.id, m.id)).run()).toThrow(/UNIQUE/);
    expect(s.db.select().from(clusters).where(eq(clusters.id, s.cluster.id)).get()!.initStartedAt).not.toBeNull();
    expect(ids).toHaveLength(1);
  });
});
