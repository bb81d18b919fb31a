/**
 * What the console pages show, read through the same store functions the admin API uses (never
 * through the HTTP API itself). The store's rows are rendered as they are; this file only
 * gathers and words them.
 */
import type { Deps } from "../../context.js";
import { allows } from "../../lifecycle/machine.js";
import { getCluster, listClusters } from "../../store/clusters.js";
import { getMachine, listMachines } from "../../store/machines.js";
import { listPreRegistrations, listRules } from "../../store/policy.js";
import { getQuorum } from "../../store/quorum.js";
import { machineTimeline } from "../../store/timeline-read.js";
import type { Chrome } from "./layout.js";
import type { DashboardView } from "./dashboard.js";
import type { MachineView, PolicyLine } from "./pages.js";

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

/** A machine's page data, or undefined when there is no such machine. */
export function machineView(deps: Deps, chrome: Chrome, id: number, notice?: string): MachineView | undefined {
  const m = getMachine(deps.db, id);
  if (!m) return undefined;
  // The same story GET /api/v1/nodes/:id/timeline tells, oldest first.
  const timeline = (machineTimeline(deps.db, m.id)?.timeline ?? []).map((t) => ({
    at: Date.parse(t.at),
    kind: t.kind,
    text: t.count && t.count > 1 ? `${t.detail} (×${t.count}, last ${t.last_at})` : t.detail,
  }));
  return {
    chrome,
    m,
    notice,
    cluster: m.clusterId === null ? undefined : getCluster(deps.db, m.clusterId),
    clusters: listClusters(deps.db),
    timeline,
    can: { approve: allows("approve", m), reject: allows("reject", m), retire: allows("retire", m), reinstall: allows("reinstall", m) },
  };
}

/** More than any site has; the API pages through the rest. */
const policyShown = 1000;

/** A cluster, its quorum, and the rules and pre-registrations that approve into it; undefined when there is none. */
export function clusterView(deps: Deps, id: number) {
  const cluster = getCluster(deps.db, id);
  if (!cluster) return undefined;
  const rules: PolicyLine[] = listRules(deps.db, { limit: policyShown })
    .items.filter((r) => r.clusterId === id)
    .map((r) => {
      const match = Object.entries({ cidr: r.matchCidr, manufacturer: r.matchManufacturer, product: r.matchProduct, serial_prefix: r.matchSerialPrefix })
        .filter(([, v]) => v !== null)
        .map(([k, v]) => `${k}=${v}`);
      const left = r.remaining === null ? "no limit" : `${r.remaining} left`;
      return {
        id: r.id,
        text: `${r.name}: ${match.join(", ") || "any machine"} → role ${r.role ?? "auto"}; ${r.enabled ? "enabled" : "disabled"}; approved ${r.approvedCount}, ${left}`,
      };
    });
  const preRegistrations: PolicyLine[] = listPreRegistrations(deps.db, { limit: policyShown })
    .items.filter((p) => p.clusterId === id)
    .map((p) => {
      const who = p.mac ? `MAC ${p.mac}` : p.serial ? `serial ${p.serial}` : `UUID ${p.uuid}`;
      const used = p.machineId === null ? "not seen yet" : `approved machine ${p.machineId}`;
      return { id: p.id, text: `${who}${p.hostname ? ` as ${p.hostname}` : ""}, role ${p.role}: ${used}` };
    });
  return { cluster, quorum: getQuorum(deps.db, id, quorumClock(deps)), rules, preRegistrations };
}
