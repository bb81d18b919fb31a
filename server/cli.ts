/**
 * `edgejoin` command line: the server and the admin client. `bin/edgejoin.js` and `npm start`
 * (server/main.ts, as `serve`) both run it, so help, version and refusals are the same. The admin
 * commands live in server/cli/, one file per noun, listed in server/cli/commands.ts.
 */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { settingNames } from "./config.js";
import { CliError } from "./cli/client.js";
import { commands } from "./cli/commands.js";

const version = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** Starts the server; main.ts passes its own `serve` so that module is not imported from itself. */
export type ServeFn = (env: Record<string, string | undefined>) => Promise<unknown>;

const serveFromMain: ServeFn = async (env) => (await import("./main.js")).serve(env);

const settingsHelp = `
Settings come from EDGEJOIN_* environment variables, or from a JSON file of the same keys named
by EDGEJOIN_CONFIG (the environment wins); an unknown EDGEJOIN_* name is refused. What each does
is in the README (Settings):
${settingNames.map((n) => `  ${n}`).join("\n")}`;

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

  for (const register of commands) register(program);

  return program;
}

/** Run the command line on `args` (the process's arguments after node and the script). */
export async function runCli(args: string[], serve?: ServeFn): Promise<void> {
  try {
    await buildProgram(serve).parseAsync(args, { from: "user" });
  } catch (err) {
    // An admin command's failure is one line naming the problem; anything else is a bug and keeps its stack.
    if (!(err instanceof CliError)) throw err;
    process.stderr.write(`edgejoin: ${err.message}\n`);
    process.exitCode = err.exitCode;
  }
}
