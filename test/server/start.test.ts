/** The real server process: start-up checks say what is wrong in one line; a good start serves. */
import { createSocket } from "node:dgram";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { firstNonLoopbackAddress } from "../../server/config.js";
import { loopbackSettings, spawnServer, stopServer, type ServerRun } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { requireTools, run } from "../helpers/tools.js";

/** Settings for a start on free loopback ports with temp folders; `over` wins. */
async function goodEnv(over: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    ...(await loopbackSettings(testTempDir("start"))),
    // Set so the first start does not print a generated admin token on stderr.
    EDGEJOIN_ADMIN_TOKEN: "start-test-admin-token-0123456789abcdef",
    ...over,
  };
}

/** Wait (bounded) for the process to exit; returns its code. */
async function exitWithin(s: ServerRun, ms: number): Promise<number | null | "running"> {
  return Promise.race([s.exited, new Promise<"running">((r) => setTimeout(() => r("running"), ms))]);
}

/** Wait (bounded) until stdout holds a log line whose msg matches. */
async function logLine(s: ServerRun, msg: RegExp, ms = 45_000): Promise<Record<string, unknown>> {
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

/** Start with `env`: it must stop by itself within 45 s, non-zero, with one stderr line matching `line`. */
async function expectRefusedStart(env: Record<string, string>, line: RegExp): Promise<void> {
  const s = spawnServer(env);
  const code = await exitWithin(s, 45_000);
  expect(code).not.toBe("running");
  expect(code).not.toBe(0);
  expect(oneLine(s.stderr())).toMatch(line);
}

describe("server start", () => {
  it("EDGEJOIN_HTTP_PORT=abc → one stderr line naming the setting, exit non-zero", async () => {
    await expectRefusedStart(await goodEnv({ EDGEJOIN_HTTP_PORT: "abc" }), /EDGEJOIN_HTTP_PORT.*port number/);
  });

  it("EDGEJOIN_TFTP_HOST=tftp.example → one stderr line naming the setting, exit non-zero", async () => {
    await expectRefusedStart(await goodEnv({ EDGEJOIN_TFTP_HOST: "tftp.example" }), /EDGEJOIN_TFTP_HOST.*IP address/);
  });

  it("EDGEJOIN_HTTP_PROT (a typo) → one stderr line naming it and the setting it meant, exit non-zero", async () => {
    await expectRefusedStart(
      await goodEnv({ EDGEJOIN_HTTP_PROT: "8081" }),
      /^edgejoin: unknown environment variable EDGEJOIN_HTTP_PROT \(did you mean EDGEJOIN_HTTP_PORT\?\)/,
    );
  });

  it("EDGEJOIN_TOKEN_TTL=24 (no unit) → one stderr line saying to write e.g. 24h, exit non-zero", async () => {
    await expectRefusedStart(await goodEnv({ EDGEJOIN_TOKEN_TTL: "24" }), /EDGEJOIN_TOKEN_TTL needs a unit: write e\.g\. 24h/);
  });

  it("EDGEJOIN_ROLE_LEASE_TIME in the EDGEJOIN_CONFIG file, started as `edgejoin serve` → one stderr line with the setting it meant", async () => {
    const root = testTempDir("start");
    const file = join(root, "edgejoin.json");
    writeFileSync(file, JSON.stringify({ EDGEJOIN_ROLE_LEASE_TIME: "30m" }));
    const s = spawnServer(await goodEnv({ EDGEJOIN_CONFIG: file }), "cli");
    const code = await exitWithin(s, 45_000);
    expect(code).not.toBe("running");
    expect(code).not.toBe(0);
    expect(oneLine(s.stderr())).toMatch(/unknown setting EDGEJOIN_ROLE_LEASE_TIME \(did you mean EDGEJOIN_ROLE_LEASE\?\)/);
  });

  it("TFTP port already taken → one stderr line naming EDGEJOIN_TFTP_PORT, exit non-zero", async () => {
    const env = await goodEnv();
    const squatter = createSocket("udp4");
    await new Promise<void>((resolve) => squatter.bind(Number(env.EDGEJOIN_TFTP_PORT), "127.0.0.1", () => resolve()));
    try {
      await expectRefusedStart(env, /EADDRINUSE.*EDGEJOIN_TFTP_PORT/);
    } finally {
      squatter.close();
    }
  });

  it("HTTP port already taken → one stderr line naming EDGEJOIN_HTTP_PORT, exit non-zero", async () => {
    const env = await goodEnv();
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(Number(env.EDGEJOIN_HTTP_PORT), "127.0.0.1", () => resolve()));
    try {
      await expectRefusedStart(env, /EDGEJOIN_HTTP_PORT/);
    } finally {
      squatter.close();
    }
  });

  it("good start → logs the iPXE binaries it serves, answers /healthz, /readyz and TFTP autoexec.ipxe, stops on SIGTERM", async () => {
    requireTools({ curl: "curl" });
    const env = await goodEnv();
    const s = spawnServer(env);
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
    // Ready: the database takes writes and TFTP is bound.
    const ready = await fetch(`http://127.0.0.1:${env.EDGEJOIN_HTTP_PORT}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });

    const script = await run("curl", ["-sS", "--max-time", "10", `tftp://127.0.0.1:${env.EDGEJOIN_TFTP_PORT}/autoexec.ipxe`]);
    expect(script.code, script.stderr).toBe(0);
    expect(script.stdout.toString()).toMatch(/^#!ipxe/);
    expect(script.stdout.toString()).toContain(`${env.EDGEJOIN_PUBLIC_URL}/boot.ipxe`);
    await logLine(s, /^TFTP transfer done$/);

    expect(await stopServer(s, "SIGTERM", 10_000)).toBe(0);
    expect(s.stderr()).toBe("");
  });

  it("EDGEJOIN_PUBLIC_URL unset → logs that it derived it from this host's address", async () => {
    const env = await goodEnv();
    delete env.EDGEJOIN_PUBLIC_URL;
    const address = firstNonLoopbackAddress();
    if (!address) {
      // No address to derive from: start must stop and say which setting to set.
      await expectRefusedStart(env, /EDGEJOIN_PUBLIC_URL/);
      return;
    }
    const s = spawnServer(env);
    const derived = await logLine(s, /EDGEJOIN_PUBLIC_URL is unset; derived it/);
    expect(derived.publicUrl).toBe(`http://${address}:${env.EDGEJOIN_HTTP_PORT}`);
    await logLine(s, /^edgejoin is serving$/);
    expect(await stopServer(s, "SIGTERM", 10_000)).toBe(0);
  });
});
