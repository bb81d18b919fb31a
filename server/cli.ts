/**
 * `edgejoin` command line: the server and the admin client. `bin/edgejoin.js` and `npm start`
 * (server/main.ts, as `serve`) both run it, so help, version and refusals are the same.
 */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { settingNames } from "./config.js";

const version = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** Starts the server; main.ts passes its own `serve` so that module is not imported from itself. */
export type ServeFn = (env: Record<string, string | undefined>) => Promise<unknown>;

const serveFromMain: ServeFn = async (env) => (await import("./main.js")).serve(env);

const settingsHelp = `
Settings come from EDGEJOIN_* environment variables, or from a JSON file of the same keys named
by EDGEJOIN_CONFIG (the environment wins); an unknown EDGEJOIN_* name is refused. What each does
is in the README (Settings):
${settingNames.map((n) => `  ${n}`).join("\n")}`;

/**
 * One call to the running server's admin API (EDGEJOIN_URL, EDGEJOIN_ADMIN_TOKEN); prints the
 * server's error and exits non-zero when it refuses. Every admin subcommand goes through here.
 */
async function adminRequest(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const base = (process.env.EDGEJOIN_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
  const token = process.env.EDGEJOIN_ADMIN_TOKEN;
  if (!token) {
    process.stderr.write("edgejoin: set EDGEJOIN_ADMIN_TOKEN to the admin token (shown once at the server's first start)\n");
    process.exit(2);
  }
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    process.stderr.write(`edgejoin: cannot reach ${base} (${(err as Error).cause ?? (err as Error).message}); set EDGEJOIN_URL to the server's address\n`);
    process.exit(1);
  }
  const answer = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    process.stderr.write(`edgejoin: ${res.status} ${String(answer.error ?? "error")}: ${String(answer.message ?? res.statusText)}\n`);
    process.exit(1);
  }
  return answer;
}

/** The whole command tree; `serve` runs the server. */
export function buildProgram(serve: ServeFn = serveFromMain): Command {
  const program = new Command("edgejoin").description("zero-touch enrollment server for edge Kubernetes").version(version);

  program
    .command("serve")
    .description("run the server (HTTP and TFTP) until SIGTERM or SIGINT; `npm start` runs this")
    .version(version)
    .addHelpText("after", settingsHelp)
    .action(async () => {
      await serve(process.env);
    });

  const keys = program.command("keys").description("the Ed25519 keys bootstrap tokens and node credentials are signed with");
  keys
    .command("rotate")
    .description("make a new active signing key on the running server; retired public keys stay published until every token they signed has expired")
    .action(async () => {
      const r = await adminRequest("POST", "/api/v1/keys/rotate");
      process.stdout.write(`active key ${String(r.active_kid)}; retired ${String(r.retired_kid)} (still verifies tokens it signed)\n`);
      const pruned = Array.isArray(r.pruned_kids) ? r.pruned_kids : [];
      if (pruned.length > 0) process.stdout.write(`dropped expired keys: ${pruned.join(", ")}\n`);
    });

  return program;
}

/** Run the command line on `args` (the process's arguments after node and the script). */
export async function runCli(args: string[], serve?: ServeFn): Promise<void> {
  await buildProgram(serve).parseAsync(args, { from: "user" });
}
