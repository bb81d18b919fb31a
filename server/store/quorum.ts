/**
 * Quorum seats in SQLite: the transactions and queries behind role assignment. The rules are
 * pure and live elsewhere (the join gate in `lifecycle/`, seats and event plans in `quorum/`);
 * each function here loads the rows, asks the rule, and writes, in one `transact`.
 */
import { and, asc, eq, gte, inArray, isNotNull, isNull, lte, ne, sql } from "drizzle-orm";
import type { Db, Queryable } from "../../db/client.js";
import { clusters, machines, nodeEvents, type ClusterRow, type MachineRow } from "../../db/schema.js";
import { allows, configGate, type MachineRole } from "../lifecycle/machine.js";
import { chooseNodeName } from "../lifecycle/node-name.js";
import { Refusal, refuse } from "../errors.js";
import { planNodeEvent, type NodeEventInput } from "../quorum/events.js";
import { joinHostFor, formFor } from "../quorum/node-config.js";
import { quorumReport, quorumView, asHolder, type QuorumReport } from "../quorum/report.js";
import { decideSeat, expiredSeats, isFormed, needsReform, retryAfterSeconds, type WaitReason } from "../quorum/seats.js";
import { recordAudit } from "./audit.js";
import { getCluster } from "./clusters.js";
import { moved, nameTakenIn } from "./machines.js";
import { transact } from "./transaction.js";

export type { NodeEventInput } from "../quorum/events.js";

/** What the quorum answers a config request: wait, or the rows the config is rendered from. */
export type SeatAnswer =
  | { kind: "wait"; reason: WaitReason | "pending_approval" | "conflict"; retryAfter: number }
  | { kind: "seat"; machine: MachineRow & { role: MachineRole }; cluster: ClusterRow; servers: MachineRow[] };

/**
 * The store's view of time and leases. `now` is the wall clock (what the admin reads);
 * `leaseNow`, when given, is the lease clock: monotonic while edgejoin runs, so a wall-clock
 * step (an edge box without RTC syncing NTP) neither takes back nor freezes any seat. Lease
 * starts (`role_assigned_at`) are written and compared on it.
 */
export type QuorumClock = { now: number; leaseMs: number; leaseNow?: number };

/** The node credential a request carried, checked again inside the transaction that applies it. */
export type Presented = { generation: number; sourceIp?: string | undefined };

const leaseTime = (t: QuorumClock) => t.leaseNow ?? t.now;

/**
 * The credential check, inside the transaction: a reject, retire or reinstall that landed while
 * the request was in flight wins. The one stale credential let through is the one a lease
 * take-back revoked (one generation back, seat gone): its k3s reports must still raise the
 * split-brain alarm, and its config fetch is told `seat_revoked`.
 */
function credentialCheck(m: MachineRow, presented: Presented | undefined): "current" | "seat_taken_back" | Refusal {
  if (!presented || presented.generation === m.credentialGeneration) return "current";
  if (isSeatTakeBackCredential(m, presented.generation)) return "seat_taken_back";
  return refuse("credential_revoked", "this node credential was revoked; enroll again with a fresh bootstrap token");
}

/** The credential one generation back of a machine whose seat a lease took back (see `credentialCheck`). */
export function isSeatTakeBackCredential(m: Pick<MachineRow, "credentialGeneration" | "seatRevokedAt" | "role">, generation: number): boolean {
  return generation === m.credentialGeneration - 1 && m.seatRevokedAt !== null && m.role === null;
}

/** The address configs point other machines at comes only from enroll and credentialed requests like this one. */
function addressFrom(m: MachineRow, presented: Presented | undefined): { lastIp?: string } {
  const ip = presented?.sourceIp;
  return ip && ip !== m.lastIp ? { lastIp: ip } : {};
}

/** A machine approved as `server` waits this long for its turn before `auto` machines take its seat. */
const preferredServerFreshMs = 60_000;

const serverRoles: MachineRole[] = ["init", "server"];

function serverHolders(db: Queryable, clusterId: number): MachineRow[] {
  return db
    .select()
    .from(machines)
    .where(and(eq(machines.clusterId, clusterId), inArray(machines.role, serverRoles)))
    .orderBy(asc(machines.roleAssignedAt), asc(machines.id))
    .all();
}

function getMachineRow(db: Queryable, id: number): MachineRow | undefined {
  return db.select().from(machines).where(eq(machines.id, id)).get();
}

/**
 * Take back every seat of the cluster whose machine did not report `k3s-started` within the
 * lease: the machine becomes `failed` and may not fetch that config again. Returns their ids.
 */
function sweepLeases(tx: Queryable, clusterId: number, t: QuorumClock): number[] {
  const candidates = tx
    .select()
    .from(machines)
    .where(
      and(eq(machines.clusterId, clusterId), isNotNull(machines.role), isNull(machines.k3sStartedAt), lte(machines.roleAssignedAt, leaseTime(t) - t.leaseMs)),
    )
    .all();
  const expired = expiredSeats(candidates.map(asHolder), leaseTime(t), t.leaseMs);
  const taken: number[] = [];
  for (const h of expired) {
    const m = candidates.find((c) => c.id === h.id)!;
    // A seat taken back revokes the machine's credentials: a late config fetch or report changes nothing.
    tx.update(machines)
      .set({
        role: null,
        seatRevokedAt: t.now,
        credentialGeneration: m.credentialGeneration + 1,
        enrolledGeneration: null,
        ...moved("lease_expired", m, t.now),
      })
      .where(eq(machines.id, h.id))
      .run();
    recordAudit(tx, {
      at: t.now,
      actor: "system",
      action: "quorum.seat_revoked",
      machineId: h.id,
      clusterId,
      detail: { role: h.role, reason: "lease_expired", lease_ms: t.leaseMs, role_assigned_at: h.roleAssignedAt },
    });
    taken.push(h.id);
  }
  return taken;
}

function wait(reason: WaitReason | "pending_approval" | "conflict"): SeatAnswer {
  const retryAfter = reason === "pending_approval" ? 30 : reason === "conflict" ? 60 : retryAfterSeconds[reason];
  return { kind: "wait", reason, retryAfter };
}

/**
 * The config request of a machine that presented a valid credential: its seat (kept or newly
 * given) with the rows to render its config from, or a reason to wait. Refuses with
 * `machine_rejected`, `machine_retired` or `seat_revoked` (the agent stops) and `invalid_state`.
 */
export function claimSeat(db: Db, machineId: number, t: QuorumClock, presented?: Presented): SeatAnswer {
  return transact(db, (tx) => {
    let m = getMachineRow(tx, machineId);
    if (!m) return refuse("credential_revoked", "this machine no longer exists in edgejoin");
    const credential = credentialCheck(m, presented);
    if (credential instanceof Refusal) return credential;
    const gate = configGate(m);
    if (gate.kind === "stop") return refuse(gate.code, gate.message);
    if (gate.kind === "wait") return wait(gate.reason);
    const cluster = getCluster(tx, m.clusterId!);
    if (!cluster) return refuse("invalid_state", "this machine's cluster no longer exists");

    if (sweepLeases(tx, cluster.id, t).includes(m.id)) {
      return refuse("seat_revoked", "this machine did not report k3s-started within its lease; its seat went to another machine");
    }
    m = tx
      .update(machines)
      .set({ lastSeenAt: t.now, ...addressFrom(m, presented) })
      .where(eq(machines.id, m.id))
      .returning()
      .get();

    let servers = serverHolders(tx, cluster.id);
    const serverPreferredWaiting =
      m.role === null &&
      m.rolePreference === "auto" &&
      tx
        .select({ id: machines.id })
        .from(machines)
        .where(
          and(
            eq(machines.clusterId, cluster.id),
            eq(machines.state, "approved"),
            isNull(machines.role),
            eq(machines.rolePreference, "server"),
            ne(machines.id, m.id),
            gte(machines.lastSeenAt, t.now - preferredServerFreshMs),
          ),
        )
        .limit(1)
        .get() !== undefined;
    const decision = decideSeat(quorumView(cluster, servers), { id: m.id, role: m.role, preference: m.rolePreference }, { serverPreferredWaiting });
    if (decision.kind === "wait") return wait(decision.reason);

    const self = m;
    if (decision.newSeat) {
      const role = decision.role;
      // A joiner needs somewhere to join; without a known address it waits rather than fail later.
      if (role !== "init" && !joinHostFor(cluster, servers, self.id)) return wait("waiting_for_server");
      const hostname = chooseNodeName(self, cluster, (name) => nameTakenIn(tx, cluster.id, name, self.id) !== undefined);
      m = tx
        .update(machines)
        .set({
          role,
          hostname,
          roleAssignedAt: leaseTime(t),
          k3sStartedAt: null,
          readyAt: null,
          caHash: null,
          seatRevokedAt: null,
          ...moved("release_config", self, t.now),
        })
        .where(eq(machines.id, self.id))
        .returning()
        .get();
      recordAudit(tx, {
        at: t.now,
        actor: "system",
        action: "quorum.seat_assigned",
        machineId: m.id,
        clusterId: cluster.id,
        detail: { role, node_name: hostname, preference: m.rolePreference },
      });
      if (role !== "agent") servers = serverHolders(tx, cluster.id);
    } else if (self.state === "approved") {
      // It holds a seat yet came back through approval (re-imaged): it is installing again.
      // A server rejoining etcd waits while another server is joining: one learner at a time.
      const joiningNow = servers.some((s) => s.id !== self.id && s.state === "provisioning");
      if (self.role !== "agent" && formFor(self.role!, self.id, servers) === "server" && joiningNow) return wait("waiting_for_previous_server");
      // A server that ran k3s keeps k3sStartedAt, so no lease takes its seat: etcd still lists it
      // as a member, and a replacement would join beside that member rather than instead of it.
      m = tx
        .update(machines)
        .set({
          readyAt: null,
          ...(self.role === "agent" || self.k3sStartedAt === null ? { roleAssignedAt: leaseTime(t), k3sStartedAt: null } : {}),
          ...moved("release_config", self, t.now),
        })
        .where(eq(machines.id, self.id))
        .returning()
        .get();
      recordAudit(tx, { at: t.now, actor: "system", action: "quorum.seat_reinstalling", machineId: m.id, clusterId: cluster.id, detail: { role: m.role } });
      servers = serverHolders(tx, cluster.id);
    }
    // A joiner whose servers are all gone (retired, re-imaged) waits with a reason, never a config without a server.
    const seat = m as MachineRow & { role: MachineRole };
    if (formFor(seat.role, seat.id, servers) !== "init") {
      if (needsReform(quorumView(cluster, servers))) return wait("waiting_for_reform");
      if (!joinHostFor(cluster, servers, seat.id)) return wait("waiting_for_server");
    }
    return { kind: "seat", machine: seat, cluster, servers };
  });
}

/**
 * Record a progress report from a machine's agent and apply it to its seat (see
 * `planNodeEvent`), in one transaction. A refused report is not stored; a report from a revoked
 * seat or a foreign CA is flagged (`split_brain_risk`, audited) and then refused.
 */
export function recordNodeEvent(db: Db, machineId: number, event: NodeEventInput, t: QuorumClock, presented?: Presented) {
  return transact(db, (tx) => {
    let m = getMachineRow(tx, machineId);
    if (!m) return refuse("credential_revoked", "this machine no longer exists in edgejoin");
    // Checked here, not only in the middleware: a reject or retire that landed while this body was in flight wins.
    const credential = credentialCheck(m, presented);
    if (credential instanceof Refusal) return credential;
    if (credential === "seat_taken_back" && event.type !== "k3s-started" && event.type !== "ready") {
      return refuse("credential_revoked", "this node credential was revoked when the machine's seat was taken back");
    }
    const cluster = m.clusterId === null ? undefined : getCluster(tx, m.clusterId);
    if (cluster) {
      sweepLeases(tx, cluster.id, t);
      m = getMachineRow(tx, m.id)!;
    }
    const actor = `machine:${m.id}`;
    const plan = planNodeEvent(m, cluster, event);
    const caHash = event.caHash?.toLowerCase() ?? null;
    switch (plan.kind) {
      case "refuse":
        return refuse("invalid_state", plan.message);
      case "flag": {
        tx.update(machines)
          .set({ splitBrainRisk: true, ...(caHash ? { caHash } : {}) })
          .where(eq(machines.id, m.id))
          .run();
        const detail = {
          event: event.type,
          seat_revoked_at: m.seatRevokedAt,
          ca_hash: caHash,
          init_ca_hash: cluster?.caHash ?? null,
          // false: it runs a cluster of its own (two init servers); true: it joined ours after its seat went to another.
          ca_matches_init: caHash && cluster?.caHash ? caHash === cluster.caHash : null,
        };
        recordAudit(tx, { at: t.now, actor, action: "quorum.split_brain_risk", machineId: m.id, clusterId: m.clusterId, detail });
        return refuse(plan.code, plan.message, { split_brain_risk: { why: plan.why, ...detail } });
      }
      case "failure_without_seat":
        recordAudit(tx, {
          at: t.now,
          actor,
          action: "machine.failure_reported",
          machineId: m.id,
          clusterId: m.clusterId,
          detail: { detail: event.detail ?? null },
        });
        // Already failed (or turned away): the report is recorded, the state stays.
        if (allows("report_failure", m))
          tx.update(machines)
            .set(moved("report_failure", m, t.now))
            .where(eq(machines.id, m.id))
            .run();
        break;
      case "k3s_started":
        if (plan.setMachineStarted) tx.update(machines).set({ k3sStartedAt: t.now }).where(eq(machines.id, m.id)).run();
        if (plan.setClusterInitStarted) tx.update(clusters).set({ initStartedAt: t.now }).where(eq(clusters.id, cluster!.id)).run();
        recordAudit(tx, { at: t.now, actor, action: "quorum.k3s_started", machineId: m.id, clusterId: cluster!.id, detail: { role: m.role } });
        break;
      case "ready": {
        tx.update(machines)
          .set({ readyAt: t.now, k3sStartedAt: m.k3sStartedAt ?? t.now, ...(plan.caHash ? { caHash: plan.caHash } : {}), ...moved("ready", m, t.now) })
          .where(eq(machines.id, m.id))
          .run();
        const change: Partial<ClusterRow> = {};
        if (plan.setClusterInitStarted) change.initStartedAt = t.now;
        if (plan.setClusterCaHash) change.caHash = plan.caHash;
        if (isFormed(quorumView(cluster!, serverHolders(tx, cluster!.id)))) {
          if (cluster!.formedAt === null) change.formedAt = t.now;
          // Every desired server ready: fewer ready from now on is a loss, a raised count is scaling.
          if (cluster!.readyServersAtOk !== cluster!.servers) change.readyServersAtOk = cluster!.servers;
        }
        if (Object.keys(change).length > 0) tx.update(clusters).set(change).where(eq(clusters.id, cluster!.id)).run();
        recordAudit(tx, {
          at: t.now,
          actor,
          action: "machine.joined",
          machineId: m.id,
          clusterId: cluster!.id,
          detail: { role: m.role, ca_hash: plan.caHash },
        });
        break;
      }
      case "failed":
        tx.update(machines)
          .set({ ...(plan.freeSeat ? { role: null, seatRevokedAt: t.now } : {}), ...moved("report_failure", m, t.now), lastSeenAt: t.now })
          .where(eq(machines.id, m.id))
          .run();
        recordAudit(tx, {
          at: t.now,
          actor,
          action: plan.freeSeat ? "quorum.seat_revoked" : "machine.failure_reported",
          machineId: m.id,
          clusterId: cluster!.id,
          detail: { role: m.role, reason: "failure_reported", detail: event.detail ?? null },
        });
        break;
      case "record_only":
        break;
    }
    tx.update(machines)
      .set({ lastSeenAt: t.now, ...addressFrom(m, presented) })
      .where(eq(machines.id, m.id))
      .run();
    return tx
      .insert(nodeEvents)
      .values({ machineId: m.id, at: t.now, source: "agent", type: event.type, detail: event.detail ?? null, caHash })
      .returning()
      .get();
  });
}

/** The quorum of a cluster: servers (init first), agents count, health. Expired leases are taken back first. */
export function getQuorum(db: Db, clusterId: number, t: QuorumClock): QuorumReport {
  return transact(db, (tx) => {
    if (!getCluster(tx, clusterId)) return refuse("not_found", `no cluster ${clusterId}`);
    sweepLeases(tx, clusterId, t);
    const cluster = getCluster(tx, clusterId)!;
    const agents = tx
      .select({ state: machines.state, n: sql<number>`count(*)` })
      .from(machines)
      .where(and(eq(machines.clusterId, clusterId), eq(machines.role, "agent")))
      .groupBy(machines.state)
      .all();
    const flagged = tx
      .select({ id: machines.id })
      .from(machines)
      // Retiring the flagged machine is how an admin closes the alarm after dealing with it.
      .where(and(eq(machines.clusterId, clusterId), eq(machines.splitBrainRisk, true), ne(machines.state, "retired")))
      .all()
      .map((r) => r.id);
    return quorumReport(cluster, serverHolders(tx, clusterId), Object.fromEntries(agents.map((a) => [a.state, Number(a.n)])), flagged);
  });
}
