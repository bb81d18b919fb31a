/** `edgejoin rules add|ls|rm`: auto-approve rules, with an optional count limit. */
import { type Command, Option } from "commander";
import { CliError, clientFromEnv } from "./client.js";
import { type ClusterView, resolveCluster } from "./lookup.js";
import { printJson, printList } from "./table.js";

/** A rule as the API answers it (the fields the CLI reads). */
type Rule = {
  id: number;
  name: string;
  cluster_id: number;
  match: Record<string, string>;
  role: string | null;
  limit: number | null;
  enabled: boolean;
  [field: string]: unknown;
};

function whole(v: string): number {
  if (!/^\d{1,7}$/.test(v)) throw new CliError("--limit must be a whole number", 2);
  return Number(v);
}

/** The rule `ref` names: its id, or its name. */
async function ruleId(ref: string): Promise<{ id: number; name: string }> {
  if (/^[1-9]\d{0,14}$/.test(ref)) return { id: Number(ref), name: ref };
  const found = (await clientFromEnv().all<Rule>("/api/v1/rules", "rules")).find((r) => r.name === ref);
  if (!found) throw new CliError(`no rule named ${ref} (edgejoin rules ls lists them)`);
  return found;
}

/** Add `rules` and its subcommands. */
export function registerRules(program: Command): void {
  const rules = program.command("rules").description("auto-approve rules: match by source CIDR, manufacturer, product, serial prefix (all given must match)");

  rules
    .command("add")
    .description("add a rule; a machine with a conflict is never auto-approved")
    .argument("<name>", "rule name (audited as rule:<name>)")
    .requiredOption("--cluster <name>", "approve into this cluster (name or id)")
    .option("--cidr <cidr>", "source CIDR, e.g. 10.20.0.0/24")
    .option("--manufacturer <text>", "SMBIOS manufacturer, exactly")
    .option("--product <text>", "SMBIOS product, exactly")
    .option("--serial-prefix <text>", "serial number prefix")
    .addOption(new Option("--role <role>", "role preference").choices(["auto", "server", "agent"]))
    .option("--limit <n>", "approve at most this many machines, then stop", whole)
    .option("--disabled", "add it disabled")
    .option("--json", "print the server's JSON")
    .action(
      async (
        name: string,
        opts: {
          cluster: string;
          cidr?: string;
          manufacturer?: string;
          product?: string;
          serialPrefix?: string;
          role?: string;
          limit?: number;
          disabled?: boolean;
          json?: boolean;
        },
      ) => {
        const client = clientFromEnv();
        const cluster = await resolveCluster(client, opts.cluster);
        const match = {
          ...(opts.cidr ? { cidr: opts.cidr } : {}),
          ...(opts.manufacturer ? { manufacturer: opts.manufacturer } : {}),
          ...(opts.product ? { product: opts.product } : {}),
          ...(opts.serialPrefix ? { serial_prefix: opts.serialPrefix } : {}),
        };
        const body = {
          name,
          cluster_id: cluster.id,
          match,
          ...(opts.role ? { role: opts.role } : {}),
          ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
          enabled: !opts.disabled,
        };
        const made = await client.json<Rule>("POST", "/api/v1/rules", { body });
        if (opts.json) printJson(made);
        else
          process.stdout.write(`rule ${made.name} (id ${made.id}) approves into ${cluster.name}${made.limit === null ? "" : `, at most ${made.limit} more`}\n`);
      },
    );

  rules
    .command("ls")
    .description("list rules, with what each may still approve")
    .option("--json", "print the server's JSON")
    .action(async (opts: { json?: boolean }) => {
      const client = clientFromEnv();
      const list = await client.all<Rule>("/api/v1/rules", "rules");
      const names = opts.json ? new Map<number, string>() : new Map((await client.all<ClusterView>("/api/v1/clusters", "clusters")).map((c) => [c.id, c.name]));
      printList(
        opts,
        "rules",
        list,
        [
          { header: "ID", value: (r) => r.id },
          { header: "NAME", value: (r) => r.name },
          { header: "CLUSTER", value: (r) => names.get(r.cluster_id) ?? r.cluster_id },
          {
            header: "MATCH",
            value: (r) =>
              Object.entries(r.match ?? {})
                .map(([k, v]) => `${k}=${v}`)
                .join(" "),
          },
          { header: "ROLE", value: (r) => r.role },
          { header: "LIMIT", value: (r) => (r.limit === null ? "none" : r.limit === 0 ? "0 (exhausted)" : r.limit) },
          { header: "APPROVED", value: (r) => r.approved_count },
          { header: "ENABLED", value: (r) => (r.enabled ? "yes" : "no") },
        ],
        "no rules",
      );
    });

  rules
    .command("rm")
    .description("delete a rule (machines it approved stay approved)")
    .argument("<rule>", "rule id or name")
    .action(async (ref: string) => {
      const rule = await ruleId(ref);
      await clientFromEnv().send("DELETE", `/api/v1/rules/${rule.id}`);
      process.stdout.write(`rule ${rule.name} deleted\n`);
    });
}
