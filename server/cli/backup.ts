/** `edgejoin backup FILE`: a consistent copy of the running server's database. */
import { createWriteStream, renameSync, rmSync } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import { CliError, clientFromEnv } from "./client.js";

/** Add `backup`. */
export function registerBackup(program: Command): void {
  program
    .command("backup")
    .description("copy the running server's database (SQLite's online backup: it keeps serving) to FILE; README: Backup and restore")
    .argument("<file>", "where to write the copy (mode 0600: it holds the k3s cluster secrets)")
    .action(async (file: string) => {
      const res = await clientFromEnv().send("POST", "/api/v1/backup");
      if (!res.body) throw new CliError("the server answered the backup without a body");
      // Written beside the target and renamed at the end: FILE is either the whole copy or untouched.
      const partial = `${file}.partial`;
      try {
        await pipeline(Readable.fromWeb(res.body as import("node:stream/web").ReadableStream), createWriteStream(partial, { mode: 0o600 }));
        renameSync(partial, file);
      } catch (err) {
        rmSync(partial, { force: true });
        throw new CliError(`cannot write ${file}: ${(err as Error).message}`);
      }
      process.stdout.write(`wrote ${file} (${res.headers.get("content-length") ?? "?"} bytes)\n`);
    });
}
