/** `edgejoin tokens create|ls|revoke|reset-initial`: named admin tokens. */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { openDb } from "../../db/client.js";
import { resetInitialToken } from "../store/admin-token.js";
import { CliError, clientFromEnv } from "./client.js";
import { printJson, printList, shortTime } from "./table.js";

type Token = { name: string; created_at: string; created_by: string; last_used_at: string | null };

/** Add `tokens` and its subcommands. */
export function registerTokens(program: Command): void {
  const tokens = program.command("tokens").description("named admin tokens: each admin action is audited under its token's name");

  tokens
    .command("create")
    .description("make a named admin token; it is shown only now (only its SHA-256 is kept)")
    .argument("<name>", "its name, e.g. alice or ci")
    .option("--json", "print the server's JSON")
    .action(async (name: string, opts: { json?: boolean }) => {
      const made = await clientFromEnv().json<Token & { token: string }>("POST", "/api/v1/tokens", { body: { name } });
      if (opts.json) printJson(made);
      else {
        process.stderr.write(`token ${made.name} created; it is shown only now, keep it:\n`);
        process.stdout.write(`${made.token}\n`);
      }
    });

  tokens
    .command("ls")
    .description("list named tokens (never their secrets)")
    .option("--json", "print the server's JSON")
    .action(async (opts: { json?: boolean }) => {
      const list = await clientFromEnv().all<Token>("/api/v1/tokens", "tokens");
      printList(
        opts,
        "tokens",
        list,
        [
          { header: "NAME", value: (t) => t.name },
          { header: "CREATED", value: (t) => shortTime(t.created_at) },
          { header: "BY", value: (t) => t.created_by },
          { header: "LAST USED", value: (t) => shortTime(t.last_used_at) ?? "never" },
        ],
        "no named tokens",
      );
    });

  tokens
    .command("revoke")
    .description("revoke a named token: the next request carrying it is refused")
    .argument("<name>", "its name")
    .action(async (name: string) => {
      await clientFromEnv().send("DELETE", `/api/v1/tokens/${encodeURIComponent(name)}`);
      process.stdout.write(`token ${name} revoked\n`);
    });

  tokens
    .command("reset-initial")
    .description("on the server's host: replace a lost `initial` token with a new one, straight in the database (works while the server runs)")
    .option("--data-dir <dir>", "the server's data folder (default EDGEJOIN_DATA_DIR, else ./data)")
    .action((opts: { dataDir?: string }) => {
      const dataDir = resolve(opts.dataDir ?? (process.env.EDGEJOIN_DATA_DIR || "./data"));
      const file = join(dataDir, "edgejoin.db");
      // Never make a fresh, empty database in the wrong folder.
      if (!existsSync(file)) throw new CliError(`no edgejoin database at ${file}: run this where the data folder is, or pass --data-dir`, 2);
      let db: ReturnType<typeof openDb>;
      try {
        db = openDb(file);
      } catch (err) {
        throw new CliError(`cannot open ${file}: ${(err as Error).message} (run as the user the server runs as)`);
      }
      try {
        const token = resetInitialToken(db, Date.now());
        process.stderr.write("the admin token `initial` was replaced (the old one no longer works); it is shown only now, keep it:\n");
        process.stdout.write(`${token}\n`);
      } finally {
        db.$client.close();
      }
    });
}
