/**
 * What the console pages show, read through the same store functions the admin API uses (never
 * through the HTTP API itself). The store's rows are rendered as they are; this file only
 * gathers and words them.
 */
import type { Deps } from "../../context.js";
import { allows } from "../../lifecycle/machine.js";
import { listAudit } from "../../store/audit.js";
import { getCluster, listClusters } from "../../store/clusters.js";
import { getMachine, listMachines, listNodeEvents } from "../../store/machines.js";
import { getQuorum } from "../../store/quorum.js";
import type { Chrome } from "./layout.js";
import type { DashboardView } from "./dashboard.js";
import type { MachineView, TimelineLine } from "./pages.js";

/** The most machines the front page lists; the API pages through the rest. */
const fleetShown = 500;

const quorumClock = (deps: Deps) => ({ now: deps.clock(), leaseMs: deps.config.roleLeaseMs });

/** The front page's data. */
export function dashboardView(deps: Deps, chrome: Chrome, notice?: string): DashboardView {
  const clusters = listClusters(deps.db);
  const machines = listMachines(deps.db);
  return {
    chrome,
    notice,
    pending: machines.filter((m) => m.state === "pending"),
    // Newest first: the machines an admin is watching boot are the ones that just appeared.
    machines: machines.slice(-fleetShown).reverse(),
    clusters: clusters.map((cluster) => ({ cluster, quorum: getQuorum(deps.db, cluster.id, quorumClock(deps)) })),
  };
}

const detailText = (d: unknown) => (d === null || d === undefined ? "" : typeof d === "string" ? d : JSON.stringify(d));

/** A machine's page data, or undefined when there is no such machine. */
export function machineView(deps: Deps, chrome: Chrome, id: number, notice?: string): MachineView | undefined {
  const m = getMachine(deps.db, id);
  if (!m) return undefined;
  // Its story, oldest first: what it reported and what was decided about it.
  const timeline: TimelineLine[] = [
    ...listNodeEvents(deps.db, m.id).map((e) => ({ at: e.at, kind: e.source, text: [e.type, detailText(e.detail)].filter(Boolean).join(": ") })),
    ...listAudit(deps.db, { machineId: m.id }).map((a) => ({ at: a.at, kind: a.action, text: detailText(a.detail), by: a.actor })),
  ].sort((a, b) => a.at - b.at);
  return {
    chrome,
    m,
    notice,
    cluster: m.clusterId === null ? undefined : getCluster(deps.db, m.clusterId),
    clusters: listClusters(deps.db),
    timeline,
    can: { approve: allows("approve", m), reject: allows("reject", m), retire: allows("retire", m), reinstall: false },
  };
}

/** A cluster and its quorum, or undefined. */
export function clusterView(deps: Deps, id: number) {
  const cluster = getCluster(deps.db, id);
  if (!cluster) return undefined;
  return { cluster, quorum: getQuorum(deps.db, id, quorumClock(deps)) };
}
