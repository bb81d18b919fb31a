/** `edgejoin machines add|ls|rm`: pre-registered machines, approved the moment they enroll. */
import { type Command, Option } from "commander";
import { CliError, clientFromEnv } from "./client.js";
import { type ClusterView, resolveCluster } from "./lookup.js";
import { printJson, printList, shortTime } from "./table.js";

/** A pre-registration as the API answers it (the fields the CLI reads). */
type PreRegistration = { id: number; mac?: string | null; serial?: string | null; uuid?: string | null; cluster_id: number; [field: string]: unknown };

function collect(value: string, all: string[]): string[] {
  return [...all, value];
}

/** Add `machines` and its subcommands. */
export function registerMachines(program: Command): void {
  const machines = program.command("machines").description("pre-registered machines: approved the moment they enroll (approved_by machine:<id>)");

  machines
    .command("add")
    .description("expect a machine by MAC, serial or SMBIOS UUID (exactly one)")
    .option("--mac <mac>", "its MAC address")
    .option("--serial <serial>", "its serial number (the sticker)")
    .option("--uuid <uuid>", "its SMBIOS UUID")
    .requiredOption("--cluster <name>", "the cluster it joins (name or id)")
    .option("--hostname <name>", "its node name")
    .option("--label <key=value>", "a node label, repeatable", collect, [] as string[])
    .addOption(new Option("--role <role>", "role preference").choices(["auto", "server", "agent"]))
    .option("--json", "print the server's JSON")
    .action(
      async (opts: { mac?: string; serial?: string; uuid?: string; cluster: string; hostname?: string; label: string[]; role?: string; json?: boolean }) => {
        const given = [opts.mac, opts.serial, opts.uuid].filter((v) => v !== undefined).length;
        if (given !== 1) throw new CliError("give exactly one of --mac, --serial or --uuid", 2);
        const client = clientFromEnv();
        const cluster = await resolveCluster(client, opts.cluster);
        const labels: Record<string, string> = {};
        for (const p of opts.label) {
          const eq = p.indexOf("=");
          if (eq < 1) throw new CliError(`--label ${p}: write key=value`, 2);
          labels[p.slice(0, eq)] = p.slice(eq + 1);
        }
        const body = {
          ...(opts.mac ? { mac: opts.mac } : {}),
          ...(opts.serial ? { serial: opts.serial } : {}),
          ...(opts.uuid ? { uuid: opts.uuid } : {}),
          cluster_id: cluster.id,
          ...(opts.hostname ? { hostname: opts.hostname } : {}),
          ...(opts.label.length > 0 ? { labels } : {}),
          ...(opts.role ? { role: opts.role } : {}),
        };
        const made = await client.json<PreRegistration>("POST", "/api/v1/machines", { body });
        if (opts.json) printJson(made);
        else process.stdout.write(`pre-registered ${made.mac ?? made.serial ?? made.uuid} as machine:${made.id}, for cluster ${cluster.name}\n`);
      },
    );

  machines
    .command("ls")
    .description("list pre-registered machines")
    .option("--json", "print the server's JSON")
    .action(async (opts: { json?: boolean }) => {
      const client = clientFromEnv();
      const list = await client.all<PreRegistration>("/api/v1/machines", "machines");
      const names = opts.json ? new Map<number, string>() : new Map((await client.all<ClusterView>("/api/v1/clusters", "clusters")).map((c) => [c.id, c.name]));
      printList(
        opts,
        "machines",
        list,
        [
          { header: "ID", value: (m) => m.id },
          { header: "MAC", value: (m) => m.mac },
          { header: "SERIAL", value: (m) => m.serial },
          { header: "UUID", value: (m) => m.uuid },
          { header: "CLUSTER", value: (m) => names.get(m.cluster_id) ?? m.cluster_id },
          { header: "HOSTNAME", value: (m) => m.hostname },
          { header: "ROLE", value: (m) => m.role },
          { header: "ENROLLED AS", value: (m) => m.node_id ?? m.machine_id ?? m.matched_node_id },
          { header: "CREATED", value: (m) => shortTime(m.created_at) },
        ],
        "no pre-registered machines",
      );
    });

  machines
    .command("rm")
    .description("forget a pre-registration (a machine already enrolled through it stays as it is)")
    .argument("<id>", "pre-registration id (edgejoin machines ls)")
    .action(async (id: string) => {
      if (!/^[1-9]\d{0,14}$/.test(id)) throw new CliError(`${id} is not a pre-registration id (edgejoin machines ls lists them)`, 2);
      await clientFromEnv().send("DELETE", `/api/v1/machines/${id}`);
      process.stdout.write(`pre-registration ${id} removed\n`);
    });
}
