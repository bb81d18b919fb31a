/**
 * `edgejoin simulate` as a person runs it: the installed command against a real edgejoin process
 * on loopback, 200 machines over TFTP and HTTP, then the database read back.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { placeInstallerStandIns } from "../../server/simulate/stand-ins.js";
import { freeUdpPort } from "../helpers/ports.js";
import { loopbackSettings, spawnServer, waitHealthy } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const adminToken = "simulate-admin-token-0123456789abcdef";

/** Run `bin/edgejoin.js simulate …`; resolves with its exit code and output. Killed by PID after `ms`. */
function simulate(url: string, args: string[], ms: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["bin/edgejoin.js", "simulate", "--url", url, ...args], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, EDGEJOIN_ADMIN_TOKEN: adminToken },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.stderr.on("data", (d: Buffer) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), ms);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

async function startServer() {
  const root = testTempDir("simulate");
  const settings = await loopbackSettings(root);
  // Empty stand-ins for the installer files: /boot.ipxe then answers with the install script and its seed.
  placeInstallerStandIns(join(root, "artifacts"));
  const server = spawnServer({ ...settings, EDGEJOIN_ARTIFACTS_DIR: join(root, "artifacts"), EDGEJOIN_ADMIN_TOKEN: adminToken, EDGEJOIN_LOG_LEVEL: "warn" });
  await waitHealthy(server);
  return { server, settings };
}

describe("edgejoin simulate", () => {
  it("200 machines over TFTP and HTTP into a new 3-server cluster → all joined, 1 init, 2 servers, 197 agents, exit 0", async () => {
    const { server, settings } = await startServer();
    const run = await simulate(
      server.url,
      [
        "--nodes",
        "200",
        "--fast",
        "--cluster",
        "sim",
        "--servers",
        "3",
        "--tftp",
        `127.0.0.1:${settings.EDGEJOIN_TFTP_PORT}`,
        "--boot-file",
        "autoexec.ipxe",
        "--timeout",
        "150",
      ],
      170_000,
    );
    expect(run.code, `${run.out}\n${run.err}`).toBe(0);
    // Not a terminal: plain progress lines, then the two tables.
    expect(run.err).toMatch(/^200\/200 machines done, 0 failed$/m);
    expect(run.out).toMatch(/^sim\s+3\/3\s+197\s+200\/200\s+0$/m);
    for (const step of [
      "tftp",
      "boot-bare",
      "boot",
      "meta-data",
      "user-data",
      "vendor-data",
      "network-config",
      "enroll",
      "config-wait",
      "k3s-started",
      "ready",
    ]) {
      expect(run.out).toMatch(new RegExp(`^${step}\\s+200\\s`, "m"));
    }
    expect(run.out).toMatch(/200\/200 machines joined in [\d.]+ s \(approval by (admin|rule)\): ok/);

    // The server's view: 200 distinct machines in cluster sim, each with its own serial and UUID.
    const db = new Database(join(settings.EDGEJOIN_DATA_DIR!, "edgejoin.db"), { readonly: true });
    try {
      const rows = db
        .prepare("select m.mac, m.serial, m.uuid, m.role, m.state from machines m join clusters c on c.id = m.cluster_id where c.name = 'sim'")
        .all() as { mac: string; serial: string; uuid: string; role: string; state: string }[];
      expect(rows).toHaveLength(200);
      for (const key of ["mac", "serial", "uuid"] as const) expect(new Set(rows.map((r) => r[key])).size).toBe(200);
      expect(rows.every((r) => r.state === "joined")).toBe(true);
      expect(rows.filter((r) => r.role === "init")).toHaveLength(1);
      expect(rows.filter((r) => r.role === "server")).toHaveLength(2);
    } finally {
      db.close();
    }
  }, 200_000);

  it("machines that cannot fetch their boot file → none joined, each named, exit 1", async () => {
    const { server } = await startServer();
    // Nothing listens on this UDP port: every TFTP request goes unanswered.
    const silent = await freeUdpPort();
    const run = await simulate(server.url, ["--nodes", "3", "--fast", "--approve", "--tftp", `127.0.0.1:${silent}`, "--timeout", "60"], 60_000);
    expect(run.code, run.out + run.err).toBe(1);
    expect(run.out).toMatch(/^not joined: 02:[0-9a-f:]+ \(tftp: /m);
    expect(run.out).toMatch(/0\/3 machines joined .*: FAILED/);
  }, 90_000);
});
