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

/** The report. */
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

/** A seat holder as the seat rules see it. */
export function asHolder(m: MachineRow): SeatHolder {
  return { id: m.id, role: m.role!, state: m.state, roleAssignedAt: m.roleAssignedAt, k3sStartedAt: m.k3sStartedAt, readyAt: m.readyAt };
}

/** The cluster's quorum as the seat rules see it. */
export function quorumView(cluster: Pick<ClusterRow, "servers" | "initStartedAt">, servers: MachineRow[]): QuorumView {
  return { desiredServers: cluster.servers, initStartedAt: cluster.initStartedAt, holders: servers.map(asHolder) };
}

/** Build the report from the rows: server seat holders, agent counts by state, flagged machine ids. */
export function quorumReport(cluster: ClusterRow, servers: MachineRow[], agentsByState: Record<string, number>, flagged: number[]): QuorumReport {
  const initFirst = [...servers].sort((a, b) => (a.role === "init" ? -1 : b.role === "init" ? 1 : 0));
  const servedHealth = quorumHealth(quorumView(cluster, initFirst), cluster.formedAt);
  return {
    cluster_id: cluster.id,
    name: cluster.name,
    health: flagged.length > 0 ? "split_brain_risk" : servedHealth,
    servers_health: servedHealth,
    servers_desired: cluster.servers,
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
