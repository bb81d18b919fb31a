/** `edgejoin explain`: what would happen to a machine with these facts now, and why. Changes nothing. */
import type { Command } from "commander";
import { CliError, clientFromEnv } from "./client.js";
import { formatFields, formatTable, printJson } from "./table.js";

/** The explain answer's fields the CLI prints (PRODUCT.md, "Interfaces"). */
type Explanation = {
  cluster_id: number | null;
  approval: { by: string; name: string } | null;
  role_if_approved_now: string | null;
  waiting_reason: string | null;
  why: { kind: string; name: string; matched: boolean; chosen?: boolean; reason: string }[];
  machine?: { id: number; state: string } | null;
  install_policy?: string | null;
};

/** Add `explain`. */
export function registerExplain(program: Command): void {
  program
    .command("explain")
    .description(
      "for given facts: which cluster, which pre-registration or rule would approve it (and why each other one would not), which role it would get, what it would wait for",
    )
    .option("--mac <mac>", "MAC address")
    .option("--serial <serial>", "serial number")
    .option("--uuid <uuid>", "SMBIOS UUID")
    .option("--ip <address>", "the source address it would enroll from")
    .option("--manufacturer <text>", "SMBIOS manufacturer")
    .option("--product <text>", "SMBIOS product")
    .option("--json", "print the server's JSON")
    .action(async (opts: { mac?: string; serial?: string; uuid?: string; ip?: string; manufacturer?: string; product?: string; json?: boolean }) => {
      const { json, ...facts } = opts;
      if (Object.values(facts).every((v) => v === undefined))
        throw new CliError("give at least one fact: --mac, --serial, --uuid, --ip, --manufacturer, --product", 2);
      const client = clientFromEnv();
      const answer = await client.json<Explanation>("GET", "/api/v1/explain", { query: facts });
      if (json) {
        printJson(answer);
        return;
      }
      const cluster =
        answer.cluster_id === null
          ? null
          : await client
              .json<{ name: string }>("GET", `/api/v1/clusters/${answer.cluster_id}`)
              .then((c) => c.name)
              .catch(() => answer.cluster_id);
      process.stdout.write(
        formatFields([
          ["known as", answer.machine ? `machine ${answer.machine.id} (${answer.machine.state})` : "a machine edgejoin has not seen"],
          ["cluster", cluster ?? "none"],
          ["approved by", answer.approval ? `${answer.approval.by}` : "nobody: it would wait for an admin"],
          ["role if approved now", answer.role_if_approved_now],
          ["would wait for", answer.waiting_reason ?? "nothing: it would get its config at once"],
          ...(answer.install_policy ? [["install policy", answer.install_policy] as [string, unknown]] : []),
        ]),
      );
      process.stdout.write(
        answer.why.length === 0
          ? "\nno pre-registration or rule exists\n"
          : `\nconsidered:\n${formatTable(answer.why, [
              { header: "", value: (w) => (w.chosen ? "→" : w.matched ? "+" : "x") },
              { header: "KIND", value: (w) => w.kind.replace("_", "-") },
              { header: "NAME", value: (w) => w.name },
              { header: "WHY", value: (w) => w.reason },
            ])}`,
      );
    });
}
