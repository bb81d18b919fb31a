/**
 * `npm run demo`: start edgejoin on loopback with a throw-away data folder, simulate machines
 * against it (20 by default, `-- --nodes N` for more), print the tables, stop the server by its
 * PID and remove the folder. The server's own output goes to <folder>/server.log, kept on failure.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { extraLoopbackSettings, freeTcpPort, freeUdpPort } from "./ports.js";
import { placeInstallerStandIns } from "./stand-ins.js";
import { describeResult, simulate } from "./run.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

async function waitHealthy(url: string, exited: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !exited()) {
    try {
      if ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) })).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(exited() ? "the server exited at start" : `the server did not answer /healthz within ${ms / 1000} s`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { nodes: { type: "string", default: "20" }, keep: { type: "boolean", default: false } } });
  const nodes = Number(values.nodes);
  const dir = mkdtempSync(join(tmpdir(), "edgejoin-demo-"));
  const httpPort = await freeTcpPort();
  const tftpPort = await freeUdpPort();
  const url = `http://127.0.0.1:${httpPort}`;
  const adminToken = "demo-admin-token-0123456789abcdef";
  placeInstallerStandIns(join(dir, "artifacts"));
  const log = openSync(join(dir, "server.log"), "w");
  const child = spawn(process.execPath, ["--import", "tsx", "server/main.ts"], {
    cwd: repoRoot,
    stdio: ["ignore", log, log],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      EDGEJOIN_PUBLIC_URL: url,
      EDGEJOIN_HTTP_HOST: "127.0.0.1",
      EDGEJOIN_HTTP_PORT: String(httpPort),
      EDGEJOIN_TFTP_HOST: "127.0.0.1",
      EDGEJOIN_TFTP_PORT: String(tftpPort),
      EDGEJOIN_DATA_DIR: join(dir, "data"),
      EDGEJOIN_BOOT_DIR: join(dir, "boot"),
      EDGEJOIN_ARTIFACTS_DIR: join(dir, "artifacts"),
      EDGEJOIN_ADMIN_TOKEN: adminToken,
      EDGEJOIN_LOG_LEVEL: "warn",
      ...(await extraLoopbackSettings()),
    },
  });
  let exited = false;
  child.once("exit", () => (exited = true));
  let ok = false;
  try {
    process.stderr.write(`edgejoin demo: server on ${url}, TFTP 127.0.0.1:${tftpPort}, data in ${dir}\n`);
    await waitHealthy(url, () => exited, 30_000);
    const result = await simulate({
      nodes,
      url,
      adminToken,
      tftp: `127.0.0.1:${tftpPort}`,
      bootFile: "ipxe.efi",
      // A cluster of its own wanting three servers shows the HA order: init, then joins one by one.
      clusters: ["demo"],
      servers: 3,
      concurrency: nodes,
      fast: true,
      approve: false,
      timeoutMs: 300_000,
    });
    process.stdout.write(describeResult(result));
    ok = result.ok;
  } finally {
    if (!exited) {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
    if (ok && !values.keep) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`edgejoin demo: kept ${dir} (server.log inside)\n`);
  }
  return ok ? 0 : 1;
}

process.exitCode = await main().catch((err: Error) => {
  process.stderr.write(`edgejoin demo: ${err.message}\n`);
  return 2;
});
