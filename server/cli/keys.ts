/** `edgejoin keys rotate`: a new active signing key on the running server. */
import type { Command } from "commander";
import { clientFromEnv } from "./client.js";
import { printJson } from "./table.js";

/** Add `keys` and its subcommand. */
export function registerKeys(program: Command): void {
  const keys = program.command("keys").description("the Ed25519 keys bootstrap tokens and node credentials are signed with");
  keys
    .command("rotate")
    .description("make a new active signing key on the running server; retired public keys stay published until every token they signed has expired")
    .option("--json", "print the server's JSON")
    .action(async (opts: { json?: boolean }) => {
      const r = await clientFromEnv().json("POST", "/api/v1/keys/rotate");
      if (opts.json) {
        printJson(r);
        return;
      }
      process.stdout.write(`active key ${String(r.active_kid)}; retired ${String(r.retired_kid)} (still verifies tokens it signed)\n`);
      const pruned = Array.isArray(r.pruned_kids) ? r.pruned_kids : [];
      if (pruned.length > 0) process.stdout.write(`dropped expired keys: ${pruned.join(", ")}\n`);
    });
}
