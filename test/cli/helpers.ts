/** The installed `edgejoin` command, run as an admin runs it: its own process, environment and exit code. */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { loopbackSettings, spawnServer, waitHealthy } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";

const bin = fileURLToPath(new URL("../../bin/edgejoin.js", import.meta.url));
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** What one run printed and how it ended. */
export type CliRun = { code: number | null; stdout: string; stderr: string };

/** Run `edgejoin ...args` with PATH, HOME and `env` only; `onPid` learns its PID at once; killed by that PID after `ms`. */
export function edgejoin(args: string[], env: Record<string, string> = {}, ms = 60_000, onPid?: (pid: number) => void): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (child.pid !== undefined) onPid?.(child.pid);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`edgejoin ${args.join(" ")} did not finish within ${ms / 1000} s:\n${stdout}\n${stderr}`));
    }, ms);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The rows of an aligned table (header first), each split on runs of two or more spaces. */
export function tableRows(text: string): string[][] {
  return text
    .trimEnd()
    .split("\n")
    .map((line) => line.split(/ {2,}/));
}

/** The default installer's files, as stand-ins: /boot.ipxe installs only what the artifacts folder has. */
function artifactsIn(root: string): string {
  const dir = join(root, "artifacts");
  mkdirSync(join(dir, "ubuntu/casper"), { recursive: true });
  for (const f of ["ubuntu/casper/vmlinuz", "ubuntu/casper/initrd", "ubuntu/ubuntu-live-server-amd64.iso"]) writeFileSync(join(dir, f), "stand-in\n");
  return dir;
}

/** A first start of a real server on loopback, and the CLI environment with the token it printed. */
export async function firstStart() {
  const root = testTempDir("cli");
  const settings: Record<string, string> = {
    ...(await loopbackSettings(root)),
    EDGEJOIN_LOG_LEVEL: "warn",
    EDGEJOIN_IPXE_DIR: join(root, "no-ipxe"),
    EDGEJOIN_ARTIFACTS_DIR: artifactsIn(root),
  };
  const server = spawnServer(settings, "cli");
  await waitHealthy(server);
  // Printed once the listeners are bound: wait for it rather than race the write.
  for (let i = 0; i < 100 && !/^ {4}\S{43}$/m.test(server.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
  const token = /^ {4}([A-Za-z0-9_-]{43})$/m.exec(server.stderr())?.[1];
  expect(token, server.stderr()).toBeDefined();
  const env = { EDGEJOIN_URL: server.url, EDGEJOIN_ADMIN_TOKEN: token! };
  return { server, settings, env, token: token!, root };
}
