/** Two processes deciding seats on one database file at once: BEGIN IMMEDIATE holds across processes. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { openDb } from "../../db/client.js";
import { ensureDefaultCluster } from "../../server/store/clusters.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { addApproved, shapeCluster } from "./fixtures.js";

const contender = fileURLToPath(new URL("./contender.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", contender, ...args], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 50_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

it("two processes asking for 100 machines each on one database file → one init, two servers one at a time, no SQLITE_BUSY", async () => {
  const dir = testTempDir("contention");
  const file = join(dir, "edgejoin.db");
  const db = openDb(file);
  const now = Date.now();
  ensureDefaultCluster(db, { k3sVersion: "v1.31.4+k3s1", now });
  shapeCluster(db, 1, { servers: 3 });
  for (let n = 1; n <= 200; n++) addApproved(db, { n, clusterId: 1, now });
  db.$client.close();

  const results = await Promise.all([run([file, "1", "100"]), run([file, "101", "200"])]);
  for (const r of results) expect(r.code, r.out.slice(-2000)).toBe(0);

  const check = openDb(file);
  try {
    const roles = check.$client.prepare("select role, state, count(*) n from machines group by role, state order by role").all();
    expect(roles).toEqual([
      { role: "agent", state: "joined", n: 197 },
      { role: "init", state: "joined", n: 1 },
      { role: "server", state: "joined", n: 2 },
    ]);
    const audit = check.$client
      .prepare("select id, action, machine_id, detail from audit_events where action in ('quorum.seat_assigned', 'machine.joined') order by id")
      .all() as { id: number; action: string; machine_id: number; detail: string }[];
    const serverSeats = audit.filter((a) => a.action === "quorum.seat_assigned" && /"role":"(init|server)"/.test(a.detail));
    expect(serverSeats).toHaveLength(3);
    for (let i = 1; i < serverSeats.length; i++) {
      const previousReady = audit.find((a) => a.action === "machine.joined" && a.machine_id === serverSeats[i - 1]!.machine_id)!;
      expect(previousReady.id).toBeLessThan(serverSeats[i]!.id);
    }
    // Both processes took part in the decisions.
    const perProcess = results.map((r) => JSON.parse(r.out.trim().split("\n").pop()!) as { roles: Record<string, number> });
    expect(perProcess.every((p) => (p.roles.agent ?? 0) > 0)).toBe(true);
  } finally {
    check.$client.close();
  }
}, 90_000);
