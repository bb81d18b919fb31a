/**
 * Quorum seats in SQLite: the only drizzle code for roles. Every decision runs in one
 * `BEGIN IMMEDIATE` transaction (the write lock is taken before the first read), so two asks can
 * never both see a free init seat, in this process or another one on the same file. ApiErrors
 * that follow a write are thrown after the commit, so the write (a revoked seat, a split-brain
 * flag) is never rolled back by the refusal it causes.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { and, asc, eq, gte, inArray, isNotNull, isNull, lte, ne, sql } from "drizzle-orm";
import type { Queryable } from "../../db/client.js";
import { clusters, machines, type MachineState } from "../../db/schema.js";
import type { Deps, MachineRow } from "../context.js";
import { ApiError } from "../errors.js";
import { renderK3sConfig, type K3sConfigForm } from "../quorum/k3s-config.js";
import { nodeConfigBody, type NodeConfigBody } from "../quorum/node-config.js";
import { chooseNodeName, expandHostnamePattern } from "../quorum/node-name.js";
import {
  decideSeat,
  expiredSeats,
  isFormed,
  majority,
  quorumHealth,
  retryAfterSeconds,
  type QuorumHealth,
  type QuorumView,
  type SeatHolder,
  type SeatRole,
  type WaitReason,
} from "../quorum/seats.js";
import { recordAudit } from "./audit.js";
import { getCluster, type ClusterRow } from "./clusters.js";

/** What the config handler answers: wait (202) or the config (200). */
export type NodeConfigDecision =
  | { kind: "wait"; reason: WaitReason | "pending_approval"; retryAfter: number }
  | { kind: "config"; body: NodeConfigBody };

/** A progress report from a machine's agent, already validated at the edge. */
export type NodeEventInput = {
  type: string;
  detail?: string | null | undefined;
  caHash?: string | null | undefined;
};

/** A machine approved as `server` waits this long for its turn before `auto` machines take its seat. */
const preferredServerFreshMs = 60_000;

const serverRoles: SeatRole[] = ["init", "server"];

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

type Outcome<T> = { value: T } | { error: ApiError };
function unwrap<T>(o: Outcome<T>): T {
  if ("error" in o) throw o.error;
  return o.value;
}

function serverHolders(db: Queryable, clusterId: number): MachineRow[] {
  return db
    .select()
    .from(machines)
    .where(and(eq(machines.clusterId, clusterId), inArray(machines.role, serverRoles)))
    .orderBy(asc(machines.roleAssignedAt), asc(machines.id))
    .all();
}

function asHolder(m: MachineRow): SeatHolder {
  return { id: m.id, role: m.role!, state: m.state, roleAssignedAt: m.roleAssignedAt, k3sStartedAt: m.k3sStartedAt, readyAt: m.readyAt };
}

function quorumView(cluster: ClusterRow, servers: MachineRow[]): QuorumView {
  return { desiredServers: cluster.servers, initStartedAt: cluster.initStartedAt, holders: servers.map(asHolder) };
}

function setState(state: MachineState, now: number) {
  return { state, stateChangedAt: now };
}

/**
 * Take back every seat of the cluster whose machine did not report `k3s-started` within the
 * lease: the machine becomes `failed` and may not fetch that config again. Returns their ids.
 */
function sweepLeases(tx: Queryable, clusterId: number, now: number, leaseMs: number): number[] {
  const candidates = tx
    .select()
    .from(machines)
    .where(
      and(
        eq(machines.clusterId, clusterId),
        isNotNull(machines.role),
        isNull(machines.k3sStartedAt),
        lte(machines.roleAssignedAt, now - leaseMs),
      ),
    )
    .all();
  const expired = expiredSeats(candidates.map(asHolder), now, leaseMs);
  for (const h of expired) {
    tx.update(machines)
      .set({ role: null, seatRevokedAt: now, ...setState("failed", now) })
      .where(eq(machines.id, h.id))
      .run();
    recordAudit(tx, {
      at: now,
      actor: "system",
      action: "quorum.seat_revoked",
      machineId: h.id,
      clusterId,
      detail: { role: h.role, reason: "lease_expired", lease_ms: leaseMs, role_assigned_at: h.roleAssignedAt },
    });
  }
  return expired.map((h) => h.id);
}

/** Where a joiner connects when the cluster has no registration address: a ready server other than itself, the init server first. */
function joinHostFor(cluster: ClusterRow, servers: MachineRow[], selfId: number): string | null {
  if (cluster.registrationAddress) return cluster.registrationAddress;
  const others = servers.filter((s) => s.id !== selfId && s.lastIp);
  const ready = others.filter((s) => s.state === "joined");
  const pick = ready.find((s) => s.role === "init") ?? ready[0] ?? others.find((s) => s.role === "init") ?? others.find((s) => s.k3sStartedAt !== null);
  return pick?.lastIp ?? null;
}

/**
 * The config a seat renders with. A returning (re-imaged) init server joins through the others
 * as soon as any other server has run k3s, even if none is ready right now: `cluster-init` again
 * would start a second cluster beside theirs.
 */
function formFor(role: SeatRole, selfId: number, servers: MachineRow[]): K3sConfigForm {
  if (role === "agent") return "agent";
  if (role === "server") return "server";
  return servers.some((s) => s.id !== selfId && s.k3sStartedAt !== null) ? "server" : "init";
}

function renderBody(deps: Deps, cluster: ClusterRow, machine: MachineRow, servers: MachineRow[]): NodeConfigBody {
  const role = machine.role!;
  const form = formFor(role, machine.id, servers);
  const configYaml = renderK3sConfig({
    form,
    nodeName: machine.hostname ?? expandHostnamePattern(cluster.hostnamePattern, machine, cluster.name),
    nodeIp: machine.lastIp,
    registrationAddress: cluster.registrationAddress,
    joinHost: form === "init" ? null : joinHostFor(cluster, servers, machine.id),
    serverToken: cluster.serverToken,
    agentToken: cluster.agentToken,
    caHash: cluster.caHash,
    labels: { ...cluster.labels, ...machine.labels },
    taints: form === "agent" ? [] : cluster.taints,
  });
  const root = deps.config.artifactsDir;
  return nodeConfigBody({
    role,
    form,
    k3sVersion: cluster.k3sVersion,
    arch: machine.arch,
    publicUrl: deps.config.publicUrl,
    // Fixed relative paths built from a validated version: no containment question arises.
    present: (relative) => existsSync(join(root, ...relative.split("/"))),
    configYaml,
  });
}

function wait(reason: WaitReason | "pending_approval"): Outcome<NodeConfigDecision> {
  return { value: { kind: "wait", reason, retryAfter: reason === "pending_approval" ? 30 : retryAfterSeconds[reason] } };
}

/**
 * The config handler's one call for a machine that presented a valid credential: a seat (kept
 * or newly given) and its config, or a reason to wait. Throws `machine_rejected`,
 * `machine_retired` or `seat_revoked` (403: the agent stops) and `invalid_state` (409).
 */
export function resolveNodeConfig(deps: Deps, machine: Pick<MachineRow, "id">): NodeConfigDecision {
  const now = deps.clock();
  const leaseMs = deps.config.roleLeaseMs;
  const outcome = deps.db.transaction(
    (tx): Outcome<NodeConfigDecision> => {
      let m = tx.select().from(machines).where(eq(machines.id, machine.id)).get();
      if (!m) return { error: new ApiError("credential_revoked", "this machine no longer exists in edgejoin") };
      switch (m.state) {
        case "rejected":
          return { error: new ApiError("machine_rejected", "an admin rejected this machine") };
        case "retired":
          return { error: new ApiError("machine_retired", "this machine was retired from its cluster") };
        case "discovered":
        case "pending":
          return wait("pending_approval");
        case "failed":
          if (m.seatRevokedAt !== null) return { error: new ApiError("seat_revoked", "this machine's quorum seat was taken back; an admin must approve it again") };
          if (m.role === null) return { error: new ApiError("invalid_state", "this machine reported a failure; an admin must approve it again") };
          break;
        default:
          break;
      }
      if (m.clusterId === null) return { error: new ApiError("invalid_state", "this machine belongs to no cluster; approve it into one") };
      const cluster = getCluster(tx, m.clusterId);
      if (!cluster) return { error: new ApiError("invalid_state", "this machine's cluster no longer exists") };

      if (sweepLeases(tx, cluster.id, now, leaseMs).includes(m.id)) {
        return { error: new ApiError("seat_revoked", "this machine did not report k3s-started within its lease; its seat went to another machine") };
      }
      tx.update(machines).set({ lastSeenAt: now }).where(eq(machines.id, m.id)).run();

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
              gte(machines.lastSeenAt, now - preferredServerFreshMs),
            ),
          )
          .limit(1)
          .get() !== undefined;
      const decision = decideSeat(
        quorumView(cluster, servers),
        { id: m.id, role: m.role, preference: m.rolePreference },
        { serverPreferredWaiting },
      );
      if (decision.kind === "wait") return wait(decision.reason);

      if (decision.newSeat) {
        const role = decision.role;
        // A joiner needs somewhere to join; without a known address it waits rather than fail later.
        if (role !== "init" && !joinHostFor(cluster, servers, m.id)) return wait("waiting_for_server");
        const self = m;
        const hostname = chooseNodeName(self, cluster, (name) =>
          tx
            .select({ id: machines.id })
            .from(machines)
            .where(and(eq(machines.clusterId, cluster.id), isNotNull(machines.role), eq(machines.hostname, name), ne(machines.id, self.id)))
            .limit(1)
            .get() !== undefined,
        );
        m = tx
          .update(machines)
          .set({
            role,
            hostname,
            roleAssignedAt: now,
            k3sStartedAt: null,
            readyAt: null,
            caHash: null,
            seatRevokedAt: null,
            ...setState("provisioning", now),
          })
          .where(eq(machines.id, m.id))
          .returning()
          .get();
        recordAudit(tx, {
          at: now,
          actor: "system",
          action: "quorum.seat_assigned",
          machineId: m.id,
          clusterId: cluster.id,
          detail: { role, node_name: hostname, preference: m.rolePreference },
        });
        if (role !== "agent") servers = serverHolders(tx, cluster.id);
      } else if (m.state === "approved") {
        // It holds a seat yet came back through approval (re-imaged): it is installing again.
        // A server rejoining etcd waits while another server is joining: one learner at a time.
        const self = m;
        const joiningNow = servers.some((s) => s.id !== self.id && s.state === "provisioning");
        if (m.role !== "agent" && formFor(m.role!, m.id, servers) === "server" && joiningNow) return wait("waiting_for_previous_server");
        // A server that ran k3s keeps k3sStartedAt, so no lease takes its seat: etcd still lists it
        // as a member, and a replacement would join beside that member rather than instead of it.
        m = tx
          .update(machines)
          .set({
            readyAt: null,
            ...(m.role === "agent" || m.k3sStartedAt === null ? { roleAssignedAt: now, k3sStartedAt: null } : {}),
            ...setState("provisioning", now),
          })
          .where(eq(machines.id, m.id))
          .returning()
          .get();
        recordAudit(tx, { at: now, actor: "system", action: "quorum.seat_reinstalling", machineId: m.id, clusterId: cluster.id, detail: { role: m.role } });
        servers = serverHolders(tx, cluster.id);
      }
      return { value: { kind: "config", body: renderBody(deps, cluster, m, servers) } };
    },
    { behavior: "immediate" },
  );
  return unwrap(outcome);
}

/** Flag a machine reporting k3s on a seat that was taken back: loudly, never silently accepted. */
function flagSplitBrain(tx: Queryable, deps: Deps, m: MachineRow, cluster: ClusterRow | undefined, event: NodeEventInput, now: number) {
  const caHash = event.caHash?.toLowerCase() ?? null;
  const caMatchesInit = caHash && cluster?.caHash ? caHash === cluster.caHash : null;
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
    ca_matches_init: caMatchesInit,
  };
  recordAudit(tx, { at: now, actor: `machine:${m.id}`, action: "quorum.split_brain_risk", machineId: m.id, clusterId: m.clusterId, detail });
  const why =
    m.seatRevokedAt !== null
      ? "a machine reports k3s running on a quorum seat that was taken back from it"
      : "a server reports a CA that is not its cluster's (a second cluster formed)";
  deps.logger.error({ machineId: m.id, clusterId: m.clusterId, ...detail }, `SPLIT BRAIN RISK: ${why}`);
}

/**
 * The events handler's hook for `k3s-started`, `ready` and `failed` (other types are ignored):
 * starts and ends leases, makes a node `joined`, records the init server's CA hash, frees the
 * seat of a machine that failed before k3s ran, and flags reports from revoked seats (then
 * throws `seat_revoked`, after the flag is committed).
 */
export function recordNodeEvent(deps: Deps, machine: Pick<MachineRow, "id">, event: NodeEventInput): void {
  if (event.type !== "k3s-started" && event.type !== "ready" && event.type !== "failed") return;
  if (event.caHash != null && !/^[0-9a-fA-F]{64}$/.test(event.caHash)) {
    throw new ApiError("validation_failed", "ca_hash must be the hex SHA-256 (64 hex digits) of the server CA certificate");
  }
  const now = deps.clock();
  const outcome = deps.db.transaction(
    (tx): Outcome<void> => {
      let m = tx.select().from(machines).where(eq(machines.id, machine.id)).get();
      if (!m) return { error: new ApiError("credential_revoked", "this machine no longer exists in edgejoin") };
      const cluster = m.clusterId === null ? undefined : getCluster(tx, m.clusterId);
      if (cluster) {
        sweepLeases(tx, cluster.id, now, deps.config.roleLeaseMs);
        m = tx.select().from(machines).where(eq(machines.id, m.id)).get()!;
      }
      const actor = `machine:${m.id}`;

      if (m.role === null) {
        if (m.seatRevokedAt !== null && event.type !== "failed") {
          flagSplitBrain(tx, deps, m, cluster, event, now);
          return { error: new ApiError("seat_revoked", "this machine's quorum seat was taken back before it reported k3s; the report was flagged as a split-brain risk") };
        }
        if (event.type === "failed") {
          recordAudit(tx, { at: now, actor, action: "machine.failure_reported", machineId: m.id, clusterId: m.clusterId, detail: { detail: event.detail ?? null } });
          if (m.state !== "retired" && m.state !== "rejected" && m.state !== "failed") tx.update(machines).set(setState("failed", now)).where(eq(machines.id, m.id)).run();
          return { value: undefined };
        }
        return { error: new ApiError("invalid_state", `${event.type} from a machine that holds no quorum seat`) };
      }
      if (!cluster) return { error: new ApiError("invalid_state", "this machine belongs to no cluster") };

      switch (event.type) {
        case "k3s-started": {
          if (m.k3sStartedAt === null) tx.update(machines).set({ k3sStartedAt: now }).where(eq(machines.id, m.id)).run();
          if (m.role === "init" && cluster.initStartedAt === null) tx.update(clusters).set({ initStartedAt: now }).where(eq(clusters.id, cluster.id)).run();
          recordAudit(tx, { at: now, actor, action: "quorum.k3s_started", machineId: m.id, clusterId: cluster.id, detail: { role: m.role } });
          return { value: undefined };
        }
        case "ready": {
          const caHash = event.caHash?.toLowerCase() ?? null;
          if (caHash && m.role !== "agent" && cluster.caHash && caHash !== cluster.caHash) {
            // A server whose CA is not the cluster's runs a cluster of its own: never counted as joined.
            flagSplitBrain(tx, deps, m, cluster, event, now);
            return { error: new ApiError("conflict", "this server's CA is not the cluster's: it runs a cluster of its own; flagged as a split-brain risk") };
          }
          tx.update(machines)
            .set({ readyAt: now, k3sStartedAt: m.k3sStartedAt ?? now, ...(caHash ? { caHash } : {}), ...setState("joined", now) })
            .where(eq(machines.id, m.id))
            .run();
          const clusterUpdate: Partial<ClusterRow> = {};
          if (m.role === "init" && cluster.initStartedAt === null) clusterUpdate.initStartedAt = now;
          if (m.role === "init" && caHash && cluster.caHash === null) clusterUpdate.caHash = caHash;
          if (cluster.formedAt === null) {
            const view = quorumView(cluster, serverHolders(tx, cluster.id));
            if (isFormed(view)) clusterUpdate.formedAt = now;
          }
          if (Object.keys(clusterUpdate).length > 0) tx.update(clusters).set(clusterUpdate).where(eq(clusters.id, cluster.id)).run();
          recordAudit(tx, { at: now, actor, action: "machine.joined", machineId: m.id, clusterId: cluster.id, detail: { role: m.role, ca_hash: caHash } });
          return { value: undefined };
        }
        default: {
          // failed: before k3s ran, the seat goes to the next machine; after, it stays (etcd may
          // hold the member) and an admin decides, by retiring it.
          const freeSeat = m.k3sStartedAt === null;
          tx.update(machines)
            .set({ ...(freeSeat ? { role: null, seatRevokedAt: now } : {}), ...setState("failed", now) })
            .where(eq(machines.id, m.id))
            .run();
          recordAudit(tx, {
            at: now,
            actor,
            action: freeSeat ? "quorum.seat_revoked" : "machine.failure_reported",
            machineId: m.id,
            clusterId: cluster.id,
            detail: { role: m.role, reason: "failure_reported", detail: event.detail ?? null },
          });
          return { value: undefined };
        }
      }
    },
    { behavior: "immediate" },
  );
  unwrap(outcome);
}

/** Retire a machine: it leaves the cluster and its seat is free for the next machine. */
export function retireMachine(db: Deps["db"], id: number, audit: { now: number; actor: string; sourceIp?: string | null; reason?: string | null }): MachineRow {
  const outcome = db.transaction(
    (tx): Outcome<MachineRow> => {
      const m = tx.select().from(machines).where(eq(machines.id, id)).get();
      if (!m) return { error: new ApiError("not_found", `no machine ${id}`) };
      if (m.state === "retired") return { value: m };
      const retired = tx
        .update(machines)
        .set({ role: null, ...setState("retired", audit.now) })
        .where(eq(machines.id, id))
        .returning()
        .get();
      recordAudit(tx, {
        at: audit.now,
        actor: audit.actor,
        sourceIp: audit.sourceIp ?? null,
        action: "machine.retired",
        machineId: id,
        clusterId: m.clusterId,
        detail: { role: m.role, previous_state: m.state, reason: audit.reason ?? null },
      });
      return { value: retired };
    },
    { behavior: "immediate" },
  );
  return unwrap(outcome);
}

/** One server seat as `GET /api/v1/clusters/:id/quorum` shows it. */
export type QuorumSeat = {
  machine_id: number;
  mac: string;
  hostname: string | null;
  role: SeatRole;
  state: MachineState;
  /** When it entered its current state (ISO 8601). */
  since: string;
  ip: string | null;
  split_brain_risk: boolean;
};

/** `GET /api/v1/clusters/:id/quorum`. */
export type QuorumReport = {
  cluster_id: number;
  name: string;
  /** `split_brain_risk` when any machine is flagged, else the servers' health. */
  health: QuorumHealth | "split_brain_risk";
  servers_health: QuorumHealth;
  servers_desired: number;
  servers_ready: number;
  majority: number;
  servers: QuorumSeat[];
  agents: { total: number; by_state: Record<string, number> };
  split_brain_risk: number[];
  init_started_at: string | null;
  formed_at: string | null;
  ca_hash: string | null;
};

/** The quorum of a cluster: servers (init first), agents count, health. Expired leases are taken back first. */
export function getQuorum(deps: Deps, clusterId: number): QuorumReport {
  const now = deps.clock();
  const outcome = deps.db.transaction(
    (tx): Outcome<QuorumReport> => {
      const cluster0 = getCluster(tx, clusterId);
      if (!cluster0) return { error: new ApiError("not_found", `no cluster ${clusterId}`) };
      sweepLeases(tx, clusterId, now, deps.config.roleLeaseMs);
      const cluster = getCluster(tx, clusterId)!;
      const servers = serverHolders(tx, clusterId).sort((a, b) => (a.role === "init" ? -1 : b.role === "init" ? 1 : 0));
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
      const view = quorumView(cluster, servers);
      const servedHealth = quorumHealth(view, cluster.formedAt);
      const seats: QuorumSeat[] = servers.map((s) => ({
        machine_id: s.id,
        mac: s.mac,
        hostname: s.hostname,
        role: s.role!,
        state: s.state,
        since: iso(s.stateChangedAt)!,
        ip: s.lastIp,
        split_brain_risk: s.splitBrainRisk,
      }));
      return {
        value: {
          cluster_id: cluster.id,
          name: cluster.name,
          health: flagged.length > 0 ? "split_brain_risk" : servedHealth,
          servers_health: servedHealth,
          servers_desired: cluster.servers,
          servers_ready: servers.filter((s) => s.state === "joined").length,
          majority: majority(cluster.servers),
          servers: seats,
          agents: {
            total: agents.reduce((n, a) => n + Number(a.n), 0),
            by_state: Object.fromEntries(agents.map((a) => [a.state, Number(a.n)])),
          },
          split_brain_risk: flagged,
          init_started_at: iso(cluster.initStartedAt),
          formed_at: iso(cluster.formedAt),
          ca_hash: cluster.caHash,
        },
      };
    },
    { behavior: "immediate" },
  );
  return unwrap(outcome);
}

/** Server seats held in a cluster (init included): a PATCH may not lower `servers` below it. */
export function countServerSeats(db: Queryable, clusterId: number): number {
  return serverHolders(db, clusterId).length;
}
