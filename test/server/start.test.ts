/** The real server process: start-up checks say what is wrong in one line; a good start serves. */
import { spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { firstNonLoopbackAddress } from "../../server/config.js";
import { freeUdpPort, requireTool, run, tempDir } from "../tftp/harness.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

async function freeTcpPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", () => resolve()));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

type Started = { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<number | null> };

const children: ChildProcess[] = [];
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, "SIGKILL");
  for (const f of cleanups.splice(0)) f();
});

/** Spawn `node --import tsx server/main.ts` with only the given EDGEJOIN_ settings. */
function startServer(env: Record<string, string>): Started {
  const child = spawn(process.execPath, ["--import", "tsx", "server/main.ts"], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Settings for a start on free loopback ports with temp folders; `over` wins. */
async function goodEnv(over: Record<string, string> = {}): Promise<Record<string, string>> {
  const data = tempDir("start-data");
  const boot = tempDir("start-boot");
  cleanups.push(data.remove, boot.remove);
  const httpPort = await freeTcpPort();
  return {
    EDGEJOIN_PUBLIC_URL: `http://127.0.0.1:${httpPort}`,
    EDGEJOIN_HTTP_HOST: "127.0.0.1",
    EDGEJOIN_HTTP_PORT: String(httpPort),
    EDGEJOIN_TFTP_HOST: "127.0.0.1",
    EDGEJOIN_TFTP_PORT: String(await freeUdpPort()),
    EDGEJOIN_DATA_DIR: data.dir,
    EDGEJOIN_BOOT_DIR: boot.dir,
    // Set so the first start does not print a generated admin token on stderr.
    EDGEJOIN_ADMIN_TOKEN: "start-test-admin-token-0123456789abcdef",
    ...over,
  };
}

/** Wait (bounded) for the process to exit; returns its code. */
async function exitWithin(s: Started, ms: number): Promise<number | null | "running"> {
  return Promise.race([s.exited, new Promise<"running">((r) => setTimeout(() => r("running"), ms))]);
}

/** Wait (bounded) until stdout holds a log line whose msg matches. */
async function logLine(s: Started, msg: RegExp, ms = 45_000): Promise<Record<string, unknown>> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    for (const line of s.stdout().split("\n")) {
      if (!line.startsWith("{")) continue;
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (typeof parsed.msg === "string" && msg.test(parsed.msg)) return parsed;
    }
    if (s.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no log line ${msg} within ${ms} ms; exit ${s.child.exitCode}; stderr: ${s.stderr()}; stdout: ${s.stdout().slice(-2000)}`);
}

function oneLine(stderr: string): string {
  const lines = stderr.split("\n").filter((l) => l !== "");
  expect(lines, stderr).toHaveLength(1);
  return lines[0]!;
}

describe("server start", () => {
  it("EDGEJOIN_HTTP_PORT=abc → one stderr line naming the setting, exit non-zero", async () => {
    const s = startServer(await goodEnv({ EDGEJOIN_HTTP_PORT: "abc" }));
    const code = await exitWithin(s, 45_000);
    expect(code).not.toBe("running");
    expect(code).not.toBe(0);
    expect(oneLine(s.stderr())).toMatch(/EDGEJOIN_HTTP_PORT.*port number/);
  });

  it("EDGEJOIN_TFTP_HOST=tftp.example → one stderr line naming the setting, exit non-zero", async () => {
    const s = startServer(await goodEnv({ EDGEJOIN_TFTP_HOST: "tftp.example" }));
    const code = await exitWithin(s, 45_000);
    expect(code).not.toBe("running");
    expect(code).not.toBe(0);
    expect(oneLine(s.stderr())).toMatch(/EDGEJOIN_TFTP_HOST.*IP address/);
  });

  it("TFTP port already taken → one stderr line naming EDGEJOIN_TFTP_PORT, exit non-zero", async () => {
    const env = await goodEnv();
    const squatter = createSocket("udp4");
    await new Promise<void>((resolve) => squatter.bind(Number(env.EDGEJOIN_TFTP_PORT), "127.0.0.1", () => resolve()));
    try {
      const s = startServer(env);
      const code = await exitWithin(s, 45_000);
      expect(code).not.toBe("running");
      expect(code).not.toBe(0);
      expect(oneLine(s.stderr())).toMatch(/EADDRINUSE.*EDGEJOIN_TFTP_PORT/);
    } finally {
      squatter.close();
    }
  });

  it("HTTP port already taken → one stderr line naming EDGEJOIN_HTTP_PORT, exit non-zero", async () => {
    const env = await goodEnv();
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(Number(env.EDGEJOIN_HTTP_PORT), "127.0.0.1", () => resolve()));
    try {
      const s = startServer(env);
      const code = await exitWithin(s, 45_000);
      expect(code).not.toBe("running");
      expect(code).not.toBe(0);
      expect(oneLine(s.stderr())).toMatch(/EDGEJOIN_HTTP_PORT/);
    } finally {
      squatter.close();
    }
  });

  it("good start → logs the iPXE binaries it serves, answers /healthz and TFTP autoexec.ipxe, stops on SIGTERM", async () => {
    await requireTool("curl", "curl");
    const env = await goodEnv();
    const s = startServer(env);
    await logLine(s, /^edgejoin is serving$/);
    const served = s
      .stdout()
      .split("\n")
      .filter((l) => l.includes("TFTP will serve iPXE binary"))
      .map((l) => JSON.parse(l) as { file: string; from: string });
    expect(served.map((f) => f.file).sort()).toEqual(["ipxe.efi", "snponly.efi", "undionly.kpxe"]);
    expect(served.find((f) => f.file === "ipxe.efi")?.from).toBe("/boot/ipxe.efi");

    const health = await fetch(`http://127.0.0.1:${env.EDGEJOIN_HTTP_PORT}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });

    const script = await run("curl", ["-sS", "--max-time", "10", `tftp://127.0.0.1:${env.EDGEJOIN_TFTP_PORT}/autoexec.ipxe`]);
    expect(script.code, script.stderr).toBe(0);
    expect(script.stdout.toString()).toMatch(/^#!ipxe/);
    expect(script.stdout.toString()).toContain(`${env.EDGEJOIN_PUBLIC_URL}/boot.ipxe`);
    await logLine(s, /^TFTP transfer done$/);

    process.kill(s.child.pid!, "SIGTERM");
    expect(await exitWithin(s, 10_000)).toBe(0);
    expect(s.stderr()).toBe("");
  });

  it("EDGEJOIN_PUBLIC_URL unset → logs that it derived it from this host's address", async () => {
    const env = await goodEnv();
    delete env.EDGEJOIN_PUBLIC_URL;
    const address = firstNonLoopbackAddress();
    const s = startServer(env);
    if (!address) {
      // No address to derive from: start must stop and say which setting to set.
      const code = await exitWithin(s, 45_000);
      expect(code).not.toBe(0);
      expect(oneLine(s.stderr())).toMatch(/EDGEJOIN_PUBLIC_URL/);
      return;
    }
    const derived = await logLine(s, /EDGEJOIN_PUBLIC_URL is unset; derived it/);
    expect(derived.publicUrl).toBe(`http://${address}:${env.EDGEJOIN_HTTP_PORT}`);
    await logLine(s, /^edgejoin is serving$/);
    process.kill(s.child.pid!, "SIGTERM");
    expect(await exitWithin(s, 10_000)).toBe(0);
  });
});
