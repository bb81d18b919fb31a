/** `edgejoin nodes ls|show|approve|reject|retire|reinstall`: the inventory and an admin's decisions. */
import { type Command, Option } from "commander";
import { type AdminClient, CliError, clientFromEnv } from "./client.js";
import { type ClusterView, type NodeView, resolveCluster, resolveMachine } from "./lookup.js";
import { type Column, formatFields, formatTable, printJson, printList, shortTime } from "./table.js";

/** One line of a machine's timeline as the server answers it. */
type TimelineEntry = { at: string; kind: string; detail: string; count?: number; last_at?: string };

const states = ["discovered", "pending", "approved", "provisioning", "joined", "failed", "rejected", "retired"];

/** What needs an admin's eye, as short words: conflicts, a failed install, a split-brain flag. */
function flags(n: NodeView): string {
  const out: string[] = [];
  if (Array.isArray(n.conflicts) && n.conflicts.length > 0) out.push(`conflict×${n.conflicts.length}`);
  if (n.install_failed === true) out.push("install-failed");
  if (n.split_brain_risk === true) out.push("split-brain");
  return out.join(",");
}

async function clusterNames(client: AdminClient): Promise<Map<number, string>> {
  return new Map((await client.all<ClusterView>("/api/v1/clusters", "clusters")).map((c) => [c.id, c.name]));
}

function nodeColumns(names: Map<number, string>): Column<NodeView>[] {
  return [
    { header: "ID", value: (n) => n.id },
    { header: "MAC", value: (n) => n.mac },
    { header: "SERIAL", value: (n) => n.serial },
    { header: "HOSTNAME", value: (n) => n.hostname },
    { header: "STATE", value: (n) => n.state },
    { header: "ROLE", value: (n) => n.role },
    { header: "CLUSTER", value: (n) => (n.cluster_id === null ? null : (names.get(n.cluster_id) ?? n.cluster_id)) },
    { header: "IP", value: (n) => n.last_ip },
    { header: "APPROVED BY", value: (n) => n.approved_by },
    { header: "FLAGS", value: flags },
    { header: "LAST SEEN", value: (n) => shortTime(n.last_seen_at) },
  ];
}

/** The timeline as a table: a repeated entry shows its count and when it last happened. */
export function formatTimeline(entries: readonly TimelineEntry[]): string {
  return formatTable(entries, [
    { header: "AT", value: (e) => shortTime(e.at) },
    { header: "KIND", value: (e) => e.kind },
    { header: "DETAIL", value: (e) => (e.count && e.count > 1 ? `${e.detail} (×${e.count}, last ${shortTime(e.last_at)})` : e.detail) },
  ]);
}

/** Pages of the timeline `nodes show` reads before it stops: 100,000 lines, far beyond one machine's story. */
const maxTimelinePages = 100;

/** The whole timeline, following `next_cursor` page by page (at most `maxTimelinePages`); `cut` says it stopped early. */
async function wholeTimeline(client: AdminClient, id: number): Promise<{ timeline: TimelineEntry[]; cut: boolean }> {
  const timeline: TimelineEntry[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < maxTimelinePages; page++) {
    const body = await client.json<{ timeline?: unknown; next_cursor?: unknown }>("GET", `/api/v1/nodes/${id}/timeline`, { query: { limit: 1000, cursor } });
    if (!Array.isArray(body.timeline)) throw new CliError("GET /api/v1/nodes/:id/timeline answered without a timeline: is EDGEJOIN_URL an edgejoin server?");
    timeline.push(...(body.timeline as TimelineEntry[]));
    if (typeof body.next_cursor !== "string" || body.next_cursor === "") return { timeline, cut: false };
    cursor = body.next_cursor;
  }
  return { timeline, cut: true };
}

function collect(value: string, all: string[]): string[] {
  return [...all, value];
}

/** `k=v` options into a labels object. */
function labels(pairs: string[]): Record<string, string> | undefined {
  if (pairs.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf("=");
    if (eq < 1) throw new CliError(`--label ${p}: write key=value`, 2);
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

function decided(node: NodeView, what: string, names?: Map<number, string>): string {
  const cluster = node.cluster_id === null ? "" : ` in cluster ${names?.get(node.cluster_id) ?? node.cluster_id}`;
  const by = typeof node.approved_by === "string" && what === "approved" ? ` (approved_by ${node.approved_by})` : "";
  return `machine ${node.id} (${node.mac}) ${what}${cluster}: now ${node.state}${by}\n`;
}

/** Add `nodes` and its subcommands. */
export function registerNodes(program: Command): void {
  const nodes = program.command("nodes").description("machines: list, inspect (with their timeline), approve, reject, retire, reinstall");
  const ref = "machine id, MAC or serial";

  nodes
    .command("ls")
    .description("list machines")
    .addOption(new Option("--state <state>", "only machines in this state").choices(states))
    .option("--cluster <name>", "only machines of this cluster (name or id)")
    .option("-q, --query <text>", "text search over MAC, serial, hostname, model")
    .option("--install-failed", "only machines whose installer reported a failure")
    .option("--json", "print the server's JSON")
    .action(async (opts: { state?: string; cluster?: string; query?: string; installFailed?: boolean; json?: boolean }) => {
      const client = clientFromEnv();
      const cluster = opts.cluster === undefined ? undefined : await resolveCluster(client, opts.cluster);
      const list = await client.all<NodeView>("/api/v1/nodes", "nodes", {
        state: opts.state,
        cluster_id: cluster?.id,
        q: opts.query,
        install_failed: opts.installFailed ? "true" : undefined,
      });
      const names = opts.json ? new Map() : await clusterNames(client);
      printList(opts, "nodes", list, nodeColumns(names), "no machines");
    });

  nodes
    .command("show")
    .description("one machine and its timeline, oldest first: where it is and where it got stuck")
    .argument("<machine>", ref)
    .option("--json", "print the server's JSON (the machine and its timeline)")
    .action(async (machine: string, opts: { json?: boolean }) => {
      const client = clientFromEnv();
      const node = await resolveMachine(client, machine);
      const timeline = await wholeTimeline(client, node.id);
      if (opts.json) {
        printJson({ node, timeline: timeline.timeline });
        return;
      }
      const names = await clusterNames(client);
      const conflicts = Array.isArray(node.conflicts) ? node.conflicts.length : 0;
      process.stdout.write(
        formatFields([
          ["id", node.id],
          ["mac", node.mac],
          ["serial", node.serial],
          ["uuid", node.uuid],
          ["model", [node.manufacturer, node.product].filter(Boolean).join(" ")],
          ["hostname", node.hostname],
          ["state", node.state],
          ["role", node.role],
          ["cluster", node.cluster_id === null ? null : (names.get(node.cluster_id) ?? node.cluster_id)],
          ["ip", node.last_ip],
          ["approved by", node.approved_by],
          ["conflicts", conflicts === 0 ? "none" : `${conflicts} (approve with --dismiss-conflicts, reject, or reinstall)`],
          ["flags", flags(node)],
          ["first seen", shortTime(node.first_seen_at)],
          ["last seen", shortTime(node.last_seen_at)],
        ]),
      );
      process.stdout.write(`\ntimeline (oldest first):\n`);
      process.stdout.write(timeline.timeline.length === 0 ? "  nothing recorded yet\n" : formatTimeline(timeline.timeline));
      if (timeline.cut) process.stdout.write(`(stopped after ${timeline.timeline.length} lines, ${maxTimelinePages} pages)\n`);
    });

  nodes
    .command("approve")
    .description("approve a machine: it gets its k3s role and config on its next poll")
    .argument("<machine>", ref)
    .option("--cluster <name>", "put it in this cluster (name or id) instead of its own")
    .addOption(new Option("--role <role>", "role preference").choices(["auto", "server", "agent"]))
    .option("--hostname <name>", "its node name (an RFC 1123 label)")
    .option("--label <key=value>", "a node label, repeatable", collect, [] as string[])
    .option("--dismiss-conflicts", "approve although it has unresolved enrollment conflicts (you checked them)")
    .option("--json", "print the server's JSON")
    .action(
      async (machine: string, opts: { cluster?: string; role?: string; hostname?: string; label: string[]; dismissConflicts?: boolean; json?: boolean }) => {
        const client = clientFromEnv();
        const node = await resolveMachine(client, machine);
        const cluster = opts.cluster === undefined ? undefined : await resolveCluster(client, opts.cluster);
        const body = {
          ...(cluster ? { cluster_id: cluster.id } : {}),
          ...(opts.role ? { role: opts.role } : {}),
          ...(opts.hostname ? { hostname: opts.hostname } : {}),
          ...(opts.label.length > 0 ? { labels: labels(opts.label) } : {}),
          ...(opts.dismissConflicts ? { dismiss_conflicts: true } : {}),
        };
        const answer = await client.json<NodeView & { message?: string }>("POST", `/api/v1/nodes/${node.id}/approve`, { body });
        if (opts.json) printJson(answer);
        else
          process.stdout.write(
            typeof answer.message === "string" ? `machine ${node.id}: ${answer.message}\n` : decided(answer, "approved", await clusterNames(client)),
          );
      },
    );

  for (const [verb, what, help] of [
    ["reject", "rejected", "turn a machine away: its credentials die, it gets no install"],
    ["retire", "retired", "take a machine out of its cluster: its credentials die, its quorum seat is freed"],
  ] as const) {
    nodes
      .command(verb)
      .description(help)
      .argument("<machine>", ref)
      .option("--reason <text>", "why (kept in the audit log)")
      .option("--json", "print the server's JSON")
      .action(async (machine: string, opts: { reason?: string; json?: boolean }) => {
        const client = clientFromEnv();
        const node = await resolveMachine(client, machine);
        const answer = await client.json<NodeView & { remove_from_k3s?: unknown }>("POST", `/api/v1/nodes/${node.id}/${verb}`, {
          body: opts.reason ? { reason: opts.reason } : {},
        });
        if (opts.json) {
          printJson(answer);
          return;
        }
        process.stdout.write(decided(answer, what, await clusterNames(client)));
        // Retiring a machine that ran k3s: what edgejoin cannot remove from the cluster for you.
        const removal = answer.remove_from_k3s as { node_name?: string; why?: string; commands?: unknown[] } | null | undefined;
        if (removal && Array.isArray(removal.commands)) {
          process.stdout.write(`remove node ${removal.node_name} from k3s: ${removal.why}\n${removal.commands.map((c) => `  ${String(c)}`).join("\n")}\n`);
        }
      });
  }

  nodes
    .command("reinstall")
    .description("allow one new install of a machine: its credentials die, and its next netboot installs it again")
    .argument("<machine>", ref)
    .option("--json", "print the server's JSON")
    .action(async (machine: string, opts: { json?: boolean }) => {
      const client = clientFromEnv();
      const node = await resolveMachine(client, machine);
      const answer = await client.json<NodeView>("POST", `/api/v1/nodes/${node.id}/reinstall`, { body: {} });
      if (opts.json) printJson(answer);
      else process.stdout.write(`machine ${node.id} (${node.mac}) will be reinstalled at its next netboot: now ${answer.state ?? "-"}\n`);
    });
}
