/** @jsxImportSource hono/jsx */
/**
 * The console's front page: pending machines with Approve / Reject (one or many), every
 * cluster's quorum at a glance, and the whole fleet. Regions marked `data-region` are what the
 * script refreshes while machines boot; pending rows are merged by `data-key`, so a half-filled
 * approve form or a ticked box survives a refresh.
 */
import type { ClusterRow, MachineConflict, MachineRow } from "../../../db/schema.js";
import type { QuorumReport } from "../../quorum/report.js";
import { Badge, type Chrome, Csrf, Page, When } from "./layout.js";

/** Everything the front page shows. */
export type DashboardView = {
  chrome: Chrome;
  pending: MachineRow[];
  machines: MachineRow[];
  clusters: { cluster: ClusterRow; quorum: QuorumReport }[];
  /** One line saying what the last action did, from the redirect after a form post. */
  notice?: string | undefined;
};

/** A machine's refused second enrollments, waiting for an admin (approve with dismiss, reject or reinstall). */
export function conflictsOf(m: MachineRow): MachineConflict[] {
  return m.conflicts ?? [];
}

const model = (m: MachineRow) => [m.manufacturer, m.product].filter(Boolean).join(" ") || "—";

function ClusterSelect(props: { id: string; clusters: ClusterRow[]; selected: number | null; form?: string; label: string }) {
  return (
    <>
      <label for={props.id} class="sr">
        {props.label}
      </label>
      <select id={props.id} name="cluster_id" form={props.form}>
        {props.clusters.map((c) => (
          <option value={String(c.id)} selected={c.id === props.selected}>
            {c.name}
          </option>
        ))}
      </select>
    </>
  );
}

function PendingRow(props: { m: MachineRow; clusters: ClusterRow[]; csrf: string }) {
  const { m } = props;
  const conflicts = conflictsOf(m);
  return (
    <tr data-key={`m${m.id}`} data-mac={m.mac}>
      <td data-label="Select">
        <input type="checkbox" name="ids" value={String(m.id)} form="bulk" id={`pick-${m.id}`} aria-label={`Select ${m.mac}`} />
      </td>
      <td data-label="MAC">
        <a href={`/ui/machines/${m.id}`}>
          <code>{m.mac}</code>
        </a>
      </td>
      <td data-label="Serial">{m.serial ?? "—"}</td>
      <td data-label="Model">{model(m)}</td>
      <td data-label="IP">{m.lastIp ?? "—"}</td>
      <td data-label="First seen">
        <When ms={m.firstSeenAt} />
      </td>
      <td data-label="Conflicts">{conflicts.length === 0 ? <span class="muted">none</span> : <Badge value={`${conflicts.length}_conflicts`} />}</td>
      <td data-label="Decide" class="actions">
        <form method="post" action={`/ui/machines/${m.id}/approve`} class="approve">
          <Csrf token={props.csrf} />
          <ClusterSelect id={`cluster-${m.id}`} clusters={props.clusters} selected={m.clusterId} label={`Cluster for ${m.mac}`} />
          <label for={`hostname-${m.id}`} class="sr">
            Hostname for {m.mac} (optional)
          </label>
          <input id={`hostname-${m.id}`} name="hostname" placeholder="hostname (optional)" size={14} autocomplete="off" />
          {conflicts.length > 0 ? (
            <label>
              <input type="checkbox" name="dismiss_conflicts" value="true" /> dismiss conflicts
            </label>
          ) : null}
          <button type="submit" class="primary">
            Approve
          </button>
        </form>
        <form method="post" action={`/ui/machines/${m.id}/reject`}>
          <Csrf token={props.csrf} />
          <button type="submit" class="danger">
            Reject
          </button>
        </form>
      </td>
    </tr>
  );
}

function Pending(props: { v: DashboardView; clusters: ClusterRow[] }) {
  const { v } = props;
  return (
    <section aria-labelledby="pending-h">
      <h2 id="pending-h">
        Pending machines <span data-region="pending-count">({v.pending.length})</span>
      </h2>
      <form id="bulk" method="post" action="/ui/machines/approve" class="bulk">
        <Csrf token={v.chrome.csrf} />
        <ClusterSelect
          id="bulk-cluster"
          clusters={props.clusters}
          selected={props.clusters.find((c) => c.isDefault)?.id ?? null}
          label="Cluster for the selected machines"
        />
        <button type="submit">Approve selected</button>
      </form>
      <table class="cards">
        <thead>
          <tr>
            <th scope="col">
              <span class="sr">Select</span>
            </th>
            <th scope="col">MAC</th>
            <th scope="col">Serial</th>
            <th scope="col">Model</th>
            <th scope="col">IP</th>
            <th scope="col">First seen</th>
            <th scope="col">Conflicts</th>
            <th scope="col">Decide</th>
          </tr>
        </thead>
        <tbody id="pending-rows" data-rows="merge">
          {v.pending.map((m) => (
            <PendingRow m={m} clusters={props.clusters} csrf={v.chrome.csrf} />
          ))}
        </tbody>
      </table>
      <p class="muted" data-region="pending-empty">
        {v.pending.length === 0 ? "No machine is waiting for a decision." : ""}
      </p>
    </section>
  );
}

/** One cluster's quorum at a glance (also used on the cluster page). */
export function QuorumCard(props: { cluster: ClusterRow; quorum: QuorumReport }) {
  const { cluster, quorum: q } = props;
  return (
    <article class="card" aria-labelledby={`cl-${cluster.id}`}>
      <h3 id={`cl-${cluster.id}`}>
        <a href={`/ui/clusters/${cluster.id}`}>{cluster.name}</a> <Badge value={q.health} />
        {cluster.isDefault ? <span class="muted"> (default)</span> : null}
      </h3>
      <p>
        servers ready {q.servers_ready} of {q.servers_desired} (majority {q.majority}) · agents {q.agents.total}
      </p>
      <ul class="seats">
        {q.servers.map((s) => (
          <li>
            <span class="seat">{s.role === "init" ? "init" : "server"}</span> <a href={`/ui/machines/${s.machine_id}`}>{s.hostname ?? s.mac}</a>{" "}
            <Badge value={s.state} />
          </li>
        ))}
        {Array.from({ length: Math.max(0, q.servers_desired - q.servers.length) }, () => (
          <li class="muted">
            <span class="seat">{q.servers.length === 0 ? "init" : "server"}</span> free
          </li>
        ))}
      </ul>
    </article>
  );
}

function MachineTable(props: { machines: MachineRow[]; clusters: Map<number, string> }) {
  return (
    <table class="cards">
      <thead>
        <tr>
          <th scope="col">MAC</th>
          <th scope="col">Hostname</th>
          <th scope="col">State</th>
          <th scope="col">Role</th>
          <th scope="col">Cluster</th>
          <th scope="col">Last seen</th>
        </tr>
      </thead>
      <tbody>
        {props.machines.map((m) => (
          <tr data-key={`all${m.id}`} data-mac={m.mac} data-state={m.state}>
            <td data-label="MAC">
              <a href={`/ui/machines/${m.id}`}>
                <code>{m.mac}</code>
              </a>
            </td>
            <td data-label="Hostname">{m.hostname ?? "—"}</td>
            <td data-label="State">
              <Badge value={m.state} />
            </td>
            <td data-label="Role">{m.role ?? "—"}</td>
            <td data-label="Cluster">{m.clusterId === null ? "—" : (props.clusters.get(m.clusterId) ?? m.clusterId)}</td>
            <td data-label="Last seen">
              <When ms={m.lastSeenAt} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The front page. */
export function Dashboard(props: { v: DashboardView }) {
  const { v } = props;
  const clusters = v.clusters.map((c) => c.cluster);
  const names = new Map(clusters.map((c) => [c.id, c.name]));
  return (
    <Page title="Machines" chrome={v.chrome} live>
      {v.notice ? (
        <p class="notice" role="status">
          {v.notice}
        </p>
      ) : null}
      <Pending v={v} clusters={clusters} />
      <section aria-labelledby="clusters" data-region="clusters">
        <h2 id="clusters">Clusters</h2>
        <div class="grid">
          {v.clusters.map((c) => (
            <QuorumCard cluster={c.cluster} quorum={c.quorum} />
          ))}
        </div>
      </section>
      <section aria-labelledby="all-h" data-region="all-machines">
        <h2 id="all-h">All machines ({v.machines.length})</h2>
        <MachineTable machines={v.machines} clusters={names} />
      </section>
    </Page>
  );
}
