/** The `edgejoin simulate` subcommand: options, then the run, the report and the exit status. */
import { type Command, InvalidArgumentError } from "commander";
import { describeResult, resultJson, simulate } from "./run.js";

function positive(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a whole number of at least 1`);
    return n;
  };
}

/** Add `simulate` to the program. Exit 0 when every machine joined and no quorum rule broke, 1 otherwise, 2 when it cannot start. */
export function addSimulateCommand(program: Command): void {
  program
    .command("simulate")
    .description("walk N virtual machines through their whole life (TFTP, iPXE, seed, enroll, config, k3s events) against a running server")
    .requiredOption("--nodes <n>", "machines to simulate", positive("--nodes"))
    .option("--url <url>", "the server's public URL (default EDGEJOIN_URL, else http://127.0.0.1:8080)")
    .option("--tftp <host:port>", "fetch the boot file over TFTP from here first (skipped when not given)")
    .option("--boot-file <name>", "the TFTP boot file (autoexec.ipxe when the server has no such file)", "ipxe.efi")
    .option(
      "--cluster <name>",
      "cluster to put machines in, repeatable (created with --servers when missing); default: the default cluster",
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option("--servers <n>", "desired servers of clusters this run creates", positive("--servers"), 3)
    .option("--concurrency <k>", "machines walking at once (default: all)", positive("--concurrency"))
    .option("--fast", "shorten every wait (retry_after, the made-up k3s start) for simulation", false)
    .option("--approve", "approve through the admin API instead of with an approval rule the run creates", false)
    .option("--timeout <seconds>", "give up after this long", positive("--timeout"), 900)
    .option("--json", "print the figures as one JSON object instead of the tables", false)
    .action(
      async (opts: {
        nodes: number;
        url?: string;
        tftp?: string;
        bootFile: string;
        cluster: string[];
        servers: number;
        concurrency?: number;
        fast: boolean;
        approve: boolean;
        timeout: number;
        json: boolean;
      }) => {
        const adminToken = process.env.EDGEJOIN_ADMIN_TOKEN;
        if (!adminToken) {
          process.stderr.write("edgejoin: set EDGEJOIN_ADMIN_TOKEN to the admin token (simulate creates clusters and approves machines)\n");
          process.exit(2);
        }
        try {
          const result = await simulate({
            nodes: opts.nodes,
            url: (opts.url ?? process.env.EDGEJOIN_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, ""),
            adminToken,
            tftp: opts.tftp,
            bootFile: opts.bootFile,
            clusters: opts.cluster,
            servers: opts.servers,
            concurrency: opts.concurrency ?? opts.nodes,
            fast: opts.fast,
            approve: opts.approve,
            timeoutMs: opts.timeout * 1000,
          });
          process.stdout.write(opts.json ? `${JSON.stringify(resultJson(result))}\n` : describeResult(result));
          process.exitCode = result.ok ? 0 : 1;
        } catch (err) {
          process.stderr.write(`edgejoin simulate: ${(err as Error).message}\n`);
          process.exitCode = 2;
        }
      },
    );
}
