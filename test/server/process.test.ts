/**
 * edgejoin under a supervisor: `npm start` and `edgejoin serve` are one process that SIGTERM
 * reaches and that stops with exit 0, leaving nothing behind; help and version never serve.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import { loopbackSettings, spawnServer, stopServer, waitHealthy } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { requireTools } from "../helpers/tools.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const version = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** Settings on free loopback ports with a temp data folder (not made until the server makes it). */
async function settings(): Promise<Record<string, string>> {
  return { ...(await loopbackSettings(testTempDir("process"))), EDGEJOIN_ADMIN_TOKEN: "process-test-admin-token-0123456789abcdef" };
}

type Run = { child: ChildProcess; stdout(): string; stderr(): string; exited: Promise<number | null> };

/** Spawn `command` in the repo with PATH, HOME and only `env`; SIGKILLed by its PID when the test ends. */
function spawnIn(command: string, args: string[], env: Record<string, string>): Run {
  const child = spawn(command, args, {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Run to completion (at most 30 s). */
async function runIn(command: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnIn(command, args, env);
  const code = await Promise.race([r.exited, new Promise<"timeout">((res) => setTimeout(() => res("timeout"), 30_000))]);
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

/** The PID in the server's "edgejoin is serving" log line, once it appears (at most 45 s). */
async function servingPid(r: Run): Promise<number> {
  const until = Date.now() + 45_000;
  while (Date.now() < until) {
    for (const line of r.stdout().split("\n")) {
      if (!line.startsWith("{")) continue;
      const parsed = JSON.parse(line) as { msg?: string; pid?: number };
      if (parsed.msg === "edgejoin is serving" && typeof parsed.pid === "number") return parsed.pid;
    }
    if (r.child.exitCode !== null) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`edgejoin did not say it is serving; stderr: ${r.stderr()}; stdout: ${r.stdout().slice(-2000)}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The parent PID of `pid`, from /proc. */
function parentOf(pid: number): number {
  // Field 4 of /proc/PID/stat, after the command name in parentheses.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** Wait (at most 10 s) until `pid` is gone. */
async function gone(pid: number): Promise<boolean> {
  const until = Date.now() + 10_000;
  while (alive(pid) && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
  return !alive(pid);
}

/** True when both ports can be bound again on loopback: the server let go of them. */
async function portsFree(env: Record<string, string>): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(Number(env.EDGEJOIN_HTTP_PORT), "127.0.0.1", () => s.close(() => resolve(true)));
  });
  const udp = await new Promise<boolean>((resolve) => {
    const s = createSocket("udp4");
    s.once("error", () => resolve(false));
    s.bind(Number(env.EDGEJOIN_TFTP_PORT), "127.0.0.1", () => s.close(() => resolve(true)));
  });
  return tcp && udp;
}

/** `npm start` on `env`: the npm process, and the server's PID once it serves (killed by PID when the test ends). */
async function npmStart(env: Record<string, string>) {
  requireTools({ npm: "npm" });
  const npm = spawnIn("npm", ["start"], env);
  const serverPid = await servingPid(npm);
  onTestFinished(() => {
    if (alive(serverPid)) process.kill(serverPid, "SIGKILL");
  });
  return { npm, serverPid };
}

describe("npm start and edgejoin serve as processes", () => {
  it("npm start is npm and the server, nothing between; SIGTERM to npm stops the server (exit 0), no process left, ports free", async () => {
    const env = await settings();
    const { npm, serverPid } = await npmStart(env);
    // No sh or tsx in between whose death would orphan the server.
    expect(parentOf(serverPid)).toBe(npm.child.pid);
    const ready = await fetch(`http://127.0.0.1:${env.EDGEJOIN_HTTP_PORT}/readyz`);
    expect(await ready.json()).toEqual({ status: "ready" });

    npm.child.kill("SIGTERM");
    // npm exits with the server's own exit code: 0 is a clean stop.
    expect(await npm.exited).toBe(0);
    expect(await gone(serverPid)).toBe(true);
    expect(await portsFree(env)).toBe(true);
    expect(npm.stdout()).toContain('"msg":"stopping"');
  });

  it("npm start: SIGTERM to the server itself stops it with exit 0 (npm reports 0)", async () => {
    const env = await settings();
    const { npm, serverPid } = await npmStart(env);
    process.kill(serverPid, "SIGTERM");
    expect(await npm.exited).toBe(0);
    expect(await gone(serverPid)).toBe(true);
    expect(await portsFree(env)).toBe(true);
  });

  it("bin/edgejoin.js serve is one process too: ready, then SIGTERM → exit 0, ports free", async () => {
    const env = await settings();
    const s = spawnServer(env, "cli");
    await waitHealthy(s);
    const ready = await fetch(`${s.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await stopServer(s, "SIGTERM", 10_000)).toBe(0);
    expect(await portsFree(env)).toBe(true);
    expect(s.stderr()).toBe("");
  });

  it.each([
    ["edgejoin --help", process.execPath, ["bin/edgejoin.js", "--help"], /^Usage: edgejoin \[options\] \[command\]/m],
    ["edgejoin help serve", process.execPath, ["bin/edgejoin.js", "help", "serve"], /^Usage: edgejoin serve \[options\]/m],
    ["edgejoin serve --help", process.execPath, ["bin/edgejoin.js", "serve", "--help"], /^Usage: edgejoin serve \[options\][\s\S]*EDGEJOIN_TOKEN_TTL/m],
    ["edgejoin --version", process.execPath, ["bin/edgejoin.js", "--version"], new RegExp(`^${version}\\n$`)],
    ["edgejoin serve --version", process.execPath, ["bin/edgejoin.js", "serve", "--version"], new RegExp(`^${version}\\n$`)],
    ["npm start -- --help", "npm", ["start", "--", "--help"], /^Usage: edgejoin serve \[options\][\s\S]*EDGEJOIN_PUBLIC_URL/m],
    ["npm start -- --version", "npm", ["start", "--silent", "--", "--version"], new RegExp(`^${version}\\n$`)],
    ["node --import tsx server/main.ts --help", process.execPath, ["--import", "tsx", "server/main.ts", "--help"], /^Usage: edgejoin serve \[options\]/m],
  ])("%s → prints it and exits 0 without serving", async (_name, command, args, expected) => {
    if (command === "npm") requireTools({ npm: "npm" });
    const env = await settings();
    const r = await runIn(command, args, env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(expected);
    expect(r.stdout).not.toContain("edgejoin is serving");
    // Serving starts by making the data folder: help and version never got there.
    expect(existsSync(env.EDGEJOIN_DATA_DIR!)).toBe(false);
  });

  it.each([
    ["edgejoin serve --port 9000", ["bin/edgejoin.js", "serve", "--port", "9000"], /^error: unknown option '--port'$/],
    ["edgejoin serve now", ["bin/edgejoin.js", "serve", "now"], /^error: too many arguments for 'serve'/],
    ["server/main.ts --port 9000", ["--import", "tsx", "server/main.ts", "--port", "9000"], /^error: unknown option '--port'$/],
  ])("%s → one stderr line, exit non-zero, nothing served", async (_name, args, line) => {
    const env = await settings();
    const r = await runIn(process.execPath, args, env);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBe("timeout");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(line);
    expect(existsSync(env.EDGEJOIN_DATA_DIR!)).toBe(false);
  });
});
