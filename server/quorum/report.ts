/** `GET /api/v1/clusters/:id/quorum`: who holds which server seat, how many agents, how healthy. Pure. */
import type { ClusterRow, MachineRow } from "../../db/schema.js";
import type { MachineState } from "../lifecycle/machine.js";
import { majority, quorumHealth, type QuorumHealth, type QuorumView, type SeatHolder, type SeatRole } from "./seats.js";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** One server seat as the report shows it. */
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

/**
 * The servers' health as the report says it: the seat rules' four, plus `scaling` — every server
 * that was ready still is, and the cluster only waits for seats it never had filled (its desired
 * count was raised, or a retired server's seat waits for the next machine). Raising `servers`
 * from 3 to 5 is `scaling`, not `degraded`.
 */
export type ServersHealth = QuorumHealth | "scaling";

/** The report. */
export type QuorumReport = {
  cluster_id: number;
  name: string;
  /** `split_brain_risk` when any machine is flagged, else the servers' health. */
  health: ServersHealth | "split_brain_risk";
  servers_health: ServersHealth;
  /** What the admin asked for. */
  servers_desired: number;
  /** Server seats held now (ready or not). */
  servers_actual: number;
  servers_ready: number;
  majority: number;
  servers: QuorumSeat[];
  agents: { total: number; by_state: Record<string, number> };
  split_brain_risk: number[];
  init_started_at: string | null;
  formed_at: string | null;
  ca_hash: string | null;
};

/** A seat holder as the seat rules see it. */
export function asHolder(m: MachineRow): SeatHolder {
  return { id: m.id, role: m.role!, state: m.state, roleAssignedAt: m.roleAssignedAt, k3sStartedAt: m.k3sStartedAt, readyAt: m.readyAt };
}

/** The cluster's quorum as the seat rules see it. */
export function quorumView(cluster: Pick<ClusterRow, "servers" | "initStartedAt">, servers: MachineRow[]): QuorumView {
  return { desiredServers: cluster.servers, initStartedAt: cluster.initStartedAt, holders: servers.map(asHolder) };
}

/**
 * `scaling` instead of `degraded`/`lost` when no server is lost: as many are ready as the last time
 * the cluster was whole (`readyServersAtOk`), and each held seat is ready or still joining since.
 */
export function serversHealth(q: QuorumView, formedAt: number | null, readyServersAtOk: number | null = null): ServersHealth {
  const health = quorumHealth(q, formedAt);
  if (formedAt === null || health === "ok" || health === "forming") return health;
  const ready = q.holders.filter((h) => h.state === "joined" && h.readyAt !== null).length;
  // Fewer ready than when the cluster was last whole (a retired or failed server) is a loss.
  if (ready < (readyServersAtOk ?? q.desiredServers)) return health;
  const lost = q.holders.filter((h) => {
    if (h.state === "joined" && h.readyAt !== null) return false;
    const joiningSinceFormed =
      h.roleAssignedAt !== null && h.roleAssignedAt >= formedAt && h.readyAt === null && (h.state === "approved" || h.state === "provisioning");
    return !joiningSinceFormed;
  });
  return lost.length === 0 ? "scaling" : health;
}

/** What an admin removes from k3s after retiring a machine: edgejoin cannot reach into the cluster. */
export type K3sRemoval = { node_name: string; why: string; commands: string[] };

/**
 * The k3s clean-up a retire leaves to the admin, or null for a machine that never ran k3s.
 * A server is an etcd member: deleting its node makes k3s remove the member, which must happen
 * before a replacement joins, or etcd counts a dead member against its majority.
 */
export function k3sRemovalFor(m: Pick<MachineRow, "hostname" | "role" | "k3sStartedAt">, previousRole: MachineRow["role"]): K3sRemoval | null {
  const role = previousRole ?? m.role;
  if (role === null || m.k3sStartedAt === null || !m.hostname) return null;
  const server = role === "init" || role === "server";
  return {
    node_name: m.hostname,
    why: server
      ? "it was a k3s server: until its node is deleted its etcd member still counts toward the majority"
      : "it was a k3s agent: its node object stays NotReady until deleted",
    commands: [
      `kubectl drain ${m.hostname} --ignore-daemonsets --delete-emptydir-data --timeout=120s`,
      `kubectl delete node ${m.hostname}`,
      ...(server ? ["kubectl get nodes -l node-role.kubernetes.io/etcd=true   # the member is gone once its node is"] : []),
      `on the machine, if it still runs: /usr/local/bin/${server ? "k3s-uninstall.sh" : "k3s-agent-uninstall.sh"}`,
    ],
  };
}

/** Build the report from the rows: server seat holders, agent counts by state, flagged machine ids. */
export function quorumReport(cluster: ClusterRow, servers: MachineRow[], agentsByState: Record<string, number>, flagged: number[]): QuorumReport {
  const initFirst = [...servers].sort((a, b) => (a.role === "init" ? -1 : b.role === "init" ? 1 : 0));
  const servedHealth = serversHealth(quorumView(cluster, initFirst), cluster.formedAt, cluster.readyServersAtOk);
  return {
    cluster_id: cluster.id,
    name: cluster.name,
    health: flagged.length > 0 ? "split_brain_risk" : servedHealth,
    servers_health: servedHealth,
    servers_desired: cluster.servers,
    servers_actual: initFirst.length,
    servers_ready: initFirst.filter((s) => s.state === "joined").length,
    majority: majority(cluster.servers),
    servers: initFirst.map((s) => ({
      machine_id: s.id,
      mac: s.mac,
      hostname: s.hostname,
      role: s.role!,
      state: s.state,
      since: iso(s.stateChangedAt)!,
      ip: s.lastIp,
      split_brain_risk: s.splitBrainRisk,
    })),
    agents: { total: Object.values(agentsByState).reduce((n, k) => n + k, 0), by_state: agentsByState },
    split_brain_risk: flagged,
    init_started_at: iso(cluster.initStartedAt),
    formed_at: iso(cluster.formedAt),
    ca_hash: cluster.caHash,
  };
}
