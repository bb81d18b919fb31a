/** @jsxImportSource hono/jsx */
/** The console's other pages: sign-in, a machine, a cluster, and an error. */
import type { ClusterRow, MachineRow } from "../../../db/schema.js";
import type { QuorumReport } from "../../quorum/report.js";
import { conflictsOf, QuorumCard } from "./dashboard.js";
import { Badge, type Chrome, Csrf, Page, When } from "./layout.js";

/** Sign-in: the token goes in a password field and is posted, never put in a URL. */
export function SignIn(props: { csrf: string; refused?: boolean }) {
  return (
    <Page title="Sign in">
      <section class="narrow" aria-labelledby="signin-h">
        <h1 id="signin-h">Sign in to edgejoin</h1>
        {props.refused ? (
          <p class="error" role="alert">
            That admin token was not accepted.
          </p>
        ) : null}
        <form method="post" action="/ui/login">
          <input type="hidden" name="_csrf" value={props.csrf} />
          <label for="token">Admin token</label>
          <input id="token" name="token" type="password" autocomplete="current-password" required maxlength={1024} autofocus />
          <button type="submit" class="primary">
            Sign in
          </button>
        </form>
        <p class="muted">An admin token from `edgejoin tokens create`, or EDGEJOIN_ADMIN_TOKEN.</p>
      </section>
    </Page>
  );
}

/** An error as a page, with the way back. */
export function ErrorPage(props: { status: number; code: string; message: string; chrome?: Chrome | undefined }) {
  return (
    <Page title="Refused" chrome={props.chrome}>
      <section class="narrow">
        <h1>
          {props.status} {props.code.replace(/_/g, " ")}
        </h1>
        <p class="error" role="alert">
          {props.message}
        </p>
        <p>
          <a href="/ui">Back to the machines</a>
        </p>
      </section>
    </Page>
  );
}

/** One line of a machine's story. */
export type TimelineLine = { at: number; kind: string; text: string; by?: string | null | undefined };

/** What the machine page shows. */
export type MachineView = {
  chrome: Chrome;
  m: MachineRow;
  cluster: ClusterRow | undefined;
  clusters: ClusterRow[];
  timeline: TimelineLine[];
  /** Which decisions the lifecycle allows from the machine's state. */
  can: { approve: boolean; reject: boolean; retire: boolean; reinstall: boolean };
  notice?: string | undefined;
};

function Fact(props: { name: string; value: unknown }) {
  return (
    <>
      <dt>{props.name}</dt>
      <dd>{props.value === null || props.value === undefined || props.value === "" ? "—" : String(props.value)}</dd>
    </>
  );
}

/** A machine: facts, state, role, conflicts, timeline, and the decisions open to it. */
export function MachinePage(props: { v: MachineView }) {
  const { v } = props;
  const { m } = v;
  const conflicts = conflictsOf(m);
  return (
    <Page title={m.hostname ?? m.mac} chrome={v.chrome} live>
      {v.notice ? (
        <p class="notice" role="status">
          {v.notice}
        </p>
      ) : null}
      <h1>
        <code>{m.mac}</code> <span data-region="machine-state">{<Badge value={m.state} />}</span>
      </h1>
      <section aria-labelledby="facts-h" data-region="machine-facts">
        <h2 id="facts-h">Facts</h2>
        <dl class="facts">
          <Fact name="Hostname" value={m.hostname} />
          <Fact name="State" value={m.state} />
          <Fact name="Role" value={m.role} />
          <Fact name="Cluster" value={v.cluster?.name} />
          <Fact name="Approved by" value={m.approvedBy} />
          <Fact name="Serial" value={m.serial} />
          <Fact name="SMBIOS UUID" value={m.uuid} />
          <Fact name="Model" value={[m.manufacturer, m.product].filter(Boolean).join(" ")} />
          <Fact name="Architecture" value={m.arch} />
          <Fact name="Last IP" value={m.lastIp} />
          <Fact name="First seen" value={new Date(m.firstSeenAt).toISOString()} />
          <Fact name="Last seen" value={m.lastSeenAt === null ? null : new Date(m.lastSeenAt).toISOString()} />
          <Fact name="Split-brain risk" value={m.splitBrainRisk ? "yes: retire it to close the alarm" : "no"} />
        </dl>
      </section>
      <section aria-labelledby="conflicts-h" data-region="machine-conflicts">
        <h2 id="conflicts-h">Conflicts</h2>
        {conflicts.length === 0 ? (
          <p class="muted">None.</p>
        ) : (
          <ul>
            {conflicts.map((c) => (
              <li>
                <When ms={c.at} /> from {c.source_ip ?? "an unknown address"}: <code>{JSON.stringify(c.facts ?? {})}</code>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="actions-h">
        <h2 id="actions-h">Decide</h2>
        <div class="actions">
          {v.can.approve ? (
            <form method="post" action={`/ui/machines/${m.id}/approve`} class="approve">
              <Csrf token={v.chrome.csrf} />
              <input type="hidden" name="from" value="machine" />
              <label for="m-cluster">Cluster</label>
              <select id="m-cluster" name="cluster_id">
                {v.clusters.map((c) => (
                  <option value={String(c.id)} selected={c.id === m.clusterId}>
                    {c.name}
                  </option>
                ))}
              </select>
              <label for="m-hostname">Hostname (optional)</label>
              <input id="m-hostname" name="hostname" autocomplete="off" />
              {conflicts.length > 0 ? (
                <label>
                  <input type="checkbox" name="dismiss_conflicts" value="true" /> dismiss conflicts
                </label>
              ) : null}
              <button type="submit" class="primary">
                Approve
              </button>
            </form>
          ) : null}
          {v.can.reject ? (
            <form method="post" action={`/ui/machines/${m.id}/reject`}>
              <Csrf token={v.chrome.csrf} />
              <input type="hidden" name="from" value="machine" />
              <button type="submit" class="danger">
                Reject
              </button>
            </form>
          ) : null}
          {v.can.reinstall ? (
            <form method="post" action={`/ui/machines/${m.id}/reinstall`}>
              <Csrf token={v.chrome.csrf} />
              <input type="hidden" name="from" value="machine" />
              <button type="submit">Reinstall</button>
            </form>
          ) : null}
          {v.can.retire ? (
            <form method="post" action={`/ui/machines/${m.id}/retire`}>
              <Csrf token={v.chrome.csrf} />
              <input type="hidden" name="from" value="machine" />
              <button type="submit" class="danger">
                Retire
              </button>
            </form>
          ) : null}
        </div>
      </section>
      <section aria-labelledby="timeline-h" data-region="machine-timeline">
        <h2 id="timeline-h">Timeline</h2>
        <ol class="timeline">
          {v.timeline.map((t) => (
            <li>
              <When ms={t.at} /> <span class="kind">{t.kind}</span> {t.text}
              {t.by ? <span class="muted"> by {t.by}</span> : null}
            </li>
          ))}
        </ol>
      </section>
    </Page>
  );
}

/** A rule or pre-registration line, already worded by the caller. */
export type PolicyLine = { id: number; text: string };

/** A cluster: its quorum seats, agents, rules and pre-registrations. */
export function ClusterPage(props: {
  chrome: Chrome;
  cluster: ClusterRow;
  quorum: QuorumReport;
  rules: PolicyLine[] | undefined;
  preRegistrations: PolicyLine[] | undefined;
}) {
  const { cluster, quorum: q } = props;
  return (
    <Page title={cluster.name} chrome={props.chrome} live>
      <h1>
        Cluster {cluster.name} <span data-region="cluster-health">{<Badge value={q.health} />}</span>
      </h1>
      <p>
        k3s {cluster.k3sVersion} · {cluster.servers} server{cluster.servers === 1 ? "" : "s"} wanted · registration address{" "}
        {cluster.registrationAddress ?? "none (the first ready server)"}
      </p>
      <section aria-labelledby="seats-h" data-region="cluster-seats">
        <h2 id="seats-h">Seats</h2>
        <QuorumCard cluster={cluster} quorum={q} />
        <table class="cards">
          <thead>
            <tr>
              <th scope="col">Seat</th>
              <th scope="col">Machine</th>
              <th scope="col">State</th>
              <th scope="col">Since</th>
              <th scope="col">IP</th>
            </tr>
          </thead>
          <tbody>
            {q.servers.map((s) => (
              <tr>
                <td data-label="Seat">{s.role === "init" ? "init server" : "joining server"}</td>
                <td data-label="Machine">
                  <a href={`/ui/machines/${s.machine_id}`}>{s.hostname ?? s.mac}</a>
                </td>
                <td data-label="State">
                  <Badge value={s.state} />
                  {s.split_brain_risk ? <Badge value="split_brain_risk" /> : null}
                </td>
                <td data-label="Since">{s.since}</td>
                <td data-label="IP">{s.ip ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p>
          Agents: {q.agents.total}
          {Object.entries(q.agents.by_state).map(([state, n]) => ` · ${n} ${state}`)}
        </p>
      </section>
      <section aria-labelledby="rules-h">
        <h2 id="rules-h">Auto-approve rules</h2>
        <PolicyList lines={props.rules} />
      </section>
      <section aria-labelledby="prereg-h">
        <h2 id="prereg-h">Pre-registered machines</h2>
        <PolicyList lines={props.preRegistrations} />
      </section>
    </Page>
  );
}

function PolicyList(props: { lines: PolicyLine[] | undefined }) {
  if (props.lines === undefined) return <p class="muted">Not available in this version.</p>;
  if (props.lines.length === 0) return <p class="muted">None.</p>;
  return (
    <ul>
      {props.lines.map((l) => (
        <li>{l.text}</li>
      ))}
    </ul>
  );
}
