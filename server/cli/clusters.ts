/** `edgejoin clusters ls|show|create|reform|kubeconfig`: clusters and their HA quorum. */
import { chmodSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { CliError, clientFromEnv } from "./client.js";
import { type ClusterView, resolveCluster } from "./lookup.js";
import { formatFields, formatTable, printJson, printList, shortTime } from "./table.js";

/** The quorum report's fields the CLI prints. */
type Quorum = {
  health: string;
  servers_health?: string;
  servers_desired: number;
  servers_actual?: number;
  servers_ready: number;
  majority: number;
  servers: {
    machine_id: number;
    mac: string;
    hostname: string | null;
    role: string;
    state: string;
    since: string;
    ip: string | null;
    split_brain_risk: boolean;
  }[];
  agents: { total: number; by_state: Record<string, number> };
  [field: string]: unknown;
};

function collect(value: string, all: string[]): string[] {
  return [...all, value];
}

function whole(name: string) {
  return (v: string) => {
    if (!/^\d{1,6}$/.test(v)) throw new CliError(`${name} must be a whole number`, 2);
    return Number(v);
  };
}

/** The quorum as lines: health, then one row per seat, then the agents. */
export function formatQuorum(q: Quorum): string {
  const agents = Object.entries(q.agents.by_state)
    .map(([state, n]) => `${n} ${state}`)
    .join(", ");
  const head = formatFields([
    ["health", q.servers_health && q.servers_health !== q.health ? `${q.health} (servers: ${q.servers_health})` : q.health],
    [
      "servers",
      `${q.servers_ready} ready of ${q.servers_desired} desired${q.servers_actual === undefined ? "" : `, ${q.servers_actual} seated`} (majority ${q.majority})`,
    ],
    ["agents", q.agents.total === 0 ? "none" : `${q.agents.total} (${agents})`],
  ]);
  const seats =
    q.servers.length === 0
      ? "  no server seat is held yet\n"
      : formatTable(q.servers, [
          { header: "SEAT", value: (s) => s.role },
          { header: "MACHINE", value: (s) => s.machine_id },
          { header: "MAC", value: (s) => s.mac },
          { header: "HOSTNAME", value: (s) => s.hostname },
          { header: "IP", value: (s) => s.ip },
          { header: "STATE", value: (s) => (s.split_brain_risk ? `${s.state} SPLIT-BRAIN-RISK` : s.state) },
          { header: "SINCE", value: (s) => shortTime(s.since) },
        ]);
  return `${head}\n${seats}`;
}

/** Add `clusters` and its subcommands. */
export function registerClusters(program: Command): void {
  const clusters = program.command("clusters").description("clusters: list, show with the quorum, create, re-form, get the admin kubeconfig");

  clusters
    .command("ls")
    .description("list clusters")
    .option("--json", "print the server's JSON")
    .action(async (opts: { json?: boolean }) => {
      const list = await clientFromEnv().all<ClusterView>("/api/v1/clusters", "clusters");
      printList(
        opts,
        "clusters",
        list,
        [
          { header: "ID", value: (c) => c.id },
          { header: "NAME", value: (c) => c.name },
          { header: "SERVERS", value: (c) => c.servers },
          { header: "REGISTRATION ADDRESS", value: (c) => c.registration_address },
          { header: "K3S", value: (c) => c.k3s_version },
          { header: "DEFAULT", value: (c) => (c.is_default ? "yes" : "") },
          { header: "INSTALL", value: (c) => c.install_policy },
        ],
        "no clusters",
      );
    });

  clusters
    .command("show")
    .description("one cluster and its quorum: seats, who holds them, health")
    .argument("<cluster>", "cluster name or id")
    .option("--json", "print the server's JSON (the cluster and its quorum)")
    .action(async (ref: string, opts: { json?: boolean }) => {
      const client = clientFromEnv();
      const cluster = await resolveCluster(client, ref);
      const quorum = await client.json<Quorum>("GET", `/api/v1/clusters/${cluster.id}/quorum`);
      if (opts.json) {
        printJson({ cluster, quorum });
        return;
      }
      process.stdout.write(
        formatFields([
          ["cluster", `${cluster.name} (id ${cluster.id})${cluster.is_default ? ", the default" : ""}`],
          ["k3s", cluster.k3s_version],
          ["registration address", cluster.registration_address ?? "(the first server's address)"],
          ["install policy", cluster.install_policy],
          ["match cidrs", Array.isArray(cluster.match_cidrs) && cluster.match_cidrs.length > 0 ? cluster.match_cidrs.join(", ") : null],
          [
            "kubeconfig",
            cluster.kubeconfig_at
              ? `uploaded ${shortTime(cluster.kubeconfig_at)} (edgejoin clusters kubeconfig ${cluster.name})`
              : "not yet (the init server uploads it once ready)",
          ],
        ]),
      );
      process.stdout.write(`\nquorum:\n${formatQuorum(quorum)}`);
    });

  clusters
    .command("create")
    .description("create a cluster")
    .argument("<name>", "cluster name (a DNS label)")
    .option("--servers <n>", "desired server count: 1, 3, 5 or 7", whole("--servers"))
    .option("--registration-address <host>", "VIP or DNS name the nodes and kubectl use")
    .option("--k3s-version <version>", "k3s version, e.g. v1.31.4+k3s1")
    .option("--default", "make it the default cluster")
    .option("--cidr <cidr>", "source CIDR whose machines belong to it, repeatable", collect, [] as string[])
    .option("--ssh-key <line>", "an OpenSSH public key every install of it gets, repeatable", collect, [] as string[])
    .option("--install-policy <policy>", "immediate, or after_approval (install only once approved)")
    .option("--json", "print the server's JSON")
    .action(
      async (
        name: string,
        opts: {
          servers?: number;
          registrationAddress?: string;
          k3sVersion?: string;
          default?: boolean;
          cidr: string[];
          sshKey: string[];
          installPolicy?: string;
          json?: boolean;
        },
      ) => {
        const client = clientFromEnv();
        const body: Record<string, unknown> = { name };
        if (opts.servers !== undefined) body.servers = opts.servers;
        if (opts.registrationAddress) body.registration_address = opts.registrationAddress;
        if (opts.k3sVersion) body.k3s_version = opts.k3sVersion;
        if (opts.default) body.is_default = true;
        if (opts.cidr.length > 0) body.match_cidrs = opts.cidr;
        if (opts.installPolicy) body.install_policy = opts.installPolicy;
        if (opts.sshKey.length > 0) {
          // The default installer, with the keys: the server fills in the rest of a profile it made.
          const def = (await client.all<ClusterView>("/api/v1/clusters", "clusters")).find((c) => c.is_default);
          const installer = (def?.installer ?? {}) as Record<string, unknown>;
          body.installer = { ...installer, ssh_authorized_keys: opts.sshKey };
        }
        const made = await client.json<ClusterView>("POST", "/api/v1/clusters", { body });
        if (opts.json) printJson(made);
        else process.stdout.write(`cluster ${made.name} created (id ${made.id}, ${String(made.servers)} server${made.servers === 1 ? "" : "s"})\n`);
      },
    );

  clusters
    .command("reform")
    .description("re-form a cluster that lost every server: the next approved machine becomes its init server")
    .argument("<cluster>", "cluster name or id")
    .option("--json", "print the server's JSON")
    .action(async (ref: string, opts: { json?: boolean }) => {
      const client = clientFromEnv();
      const cluster = await resolveCluster(client, ref);
      const answer = await client.json("POST", `/api/v1/clusters/${cluster.id}/reform`, { body: {} });
      if (opts.json) printJson(answer);
      else process.stdout.write(`cluster ${cluster.name} will re-form: the next approved machine becomes its init server\n`);
    });

  clusters
    .command("kubeconfig")
    .description("the cluster's admin kubeconfig (uploaded by its init server once ready), pointing at the registration address")
    .argument("<cluster>", "cluster name or id")
    .option("-o, --output <file>", "write it to this file (mode 0600) instead of stdout")
    .action(async (ref: string, opts: { output?: string }) => {
      const client = clientFromEnv();
      const cluster = await resolveCluster(client, ref);
      const text = await (await client.send("GET", `/api/v1/clusters/${cluster.id}/kubeconfig`)).text();
      if (opts.output) {
        // It holds the cluster admin's client key.
        writeFileSync(opts.output, text, { mode: 0o600 });
        // The mode above applies only to a new file: an existing one is tightened too.
        chmodSync(opts.output, 0o600);
        process.stderr.write(`wrote ${opts.output}: export KUBECONFIG=${opts.output}\n`);
      } else process.stdout.write(text);
    });
}
