/**
 * Zero touch against a real edgejoin process on loopback: simulated NUCs walk boot → seed →
 * enroll over real HTTP (and HTTPS for the node API, as the agent does) while pre-registrations
 * and auto-approve rules decide. The limit of a rule counts down inside the enroll transaction,
 * so a crowd enrolling at once never gets one approval too many. A second client bound to
 * 127.0.0.2 plays the LAN neighbour where the source address matters.
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { testTempDir } from "../helpers/temp-dir.js";
import { testMac } from "../quorum/fixtures.js";
import { agentFilesOf, EdgejoinProcess } from "../quorum/harness.js";

const adminToken = "policy-admin-token-0123456789abcdef";
const admin = { authorization: `Bearer ${adminToken}` };
const nuc = { manufacturer: "Intel Corporation", product: "NUC13ANHi5" };

/** One exchange on its own connection, from `localAddress` (the LAN address this client plays). */
function exchange(
  method: string,
  url: string,
  o: { body?: unknown; headers?: Record<string, string>; ca?: string; localAddress?: string } = {},
): Promise<{ status: number; text: string; json: () => Record<string, any> }> {
  return new Promise((resolve, reject) => {
    const body = o.body === undefined ? undefined : JSON.stringify(o.body);
    const options = {
      method,
      agent: false as const,
      timeout: 30_000,
      localAddress: o.localAddress ?? "127.0.0.1",
      headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...o.headers },
    };
    const done = (res: import("node:http").IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode ?? 0, text, json: () => JSON.parse(text) as Record<string, any> });
      });
      res.on("error", reject);
    };
    const req = url.startsWith("https:") ? httpsRequest(url, { ...options, ca: o.ca ?? [] }, done) : httpRequest(url, options, done);
    req.on("timeout", () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on("error", reject);
    req.end(body);
  });
}

async function startServer(): Promise<EdgejoinProcess> {
  const server = await EdgejoinProcess.onLoopback(testTempDir("policy"), adminToken);
  await server.start();
  return server;
}

/** What a NUC says about itself. */
type Nuc = { mac: string; serial: string; from?: string; manufacturer?: string; product?: string };

/** One machine's walk: boot (iPXE's query), seed (user-data), enroll over HTTPS with its facts. Returns the enroll answer. */
async function rack(server: EdgejoinProcess, m: Nuc): Promise<{ node_id: number; state: string }> {
  const from = m.from ?? "127.0.0.1";
  const facts = { manufacturer: m.manufacturer ?? nuc.manufacturer, product: m.product ?? nuc.product };
  const query = new URLSearchParams({ mac: m.mac, serial: m.serial, arch: "x86_64", platform: "efi", ...facts });
  const boot = await exchange("GET", `${server.url}/boot.ipxe?${query}`, { localAddress: from });
  if (boot.status !== 200 || !boot.text.startsWith("#!ipxe")) throw new Error(`boot ${m.mac}: ${boot.status} ${boot.text.slice(0, 200)}`);
  const seed = await exchange("GET", `${server.url}/cloud-init/${m.mac}/user-data`, { localAddress: from });
  if (seed.status !== 200) throw new Error(`user-data ${m.mac}: ${seed.status} ${seed.text.slice(0, 200)}`);
  const agent = agentFilesOf(seed.text);
  const res = await exchange("POST", `${agent.nodeUrl}/api/v1/enroll`, {
    ca: agent.ca,
    localAddress: from,
    body: { token: agent.token, mac: m.mac, serial: m.serial, arch: "x86_64", facts: { cpu_count: 4, ...facts } },
  });
  if (res.status !== 201) throw new Error(`enroll ${m.mac}: ${res.status} ${res.text.slice(0, 300)}`);
  return res.json() as { node_id: number; state: string };
}

async function adminCall(server: EdgejoinProcess, method: string, path: string, body?: unknown) {
  const res = await exchange(method, `${server.url}${path}`, { headers: admin, body });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.text.slice(0, 300)}`);
  return res.json();
}

type Row = { id: number; mac: string; serial: string; state: string; approved_by: string | null; role_preference: string; hostname: string | null };

function machinesIn(server: EdgejoinProcess): Row[] {
  const db = new Database(join(server.dataDir, "edgejoin.db"), { readonly: true });
  try {
    return db.prepare("select id, mac, serial, state, approved_by, role_preference, hostname from machines order by id").all() as Row[];
  } finally {
    db.close();
  }
}

function auditOf(server: EdgejoinProcess, action: string): { actor: string; machine_id: number; detail: string }[] {
  const db = new Database(join(server.dataDir, "edgejoin.db"), { readonly: true });
  try {
    return db.prepare("select actor, machine_id, detail from audit_events where action = ? order by id").all(action) as never;
  } finally {
    db.close();
  }
}

describe("zero touch: pre-registrations and a rule with a limit, over real HTTP", () => {
  it("20 NUCs racked at once, a rule limit: 3 and two pre-registered serials → exactly 5 approved, each with the right approved_by; 15 pending", async () => {
    const server = await startServer();
    const nucs: Nuc[] = Array.from({ length: 20 }, (_, i) => ({ mac: testMac(0x100 + i), serial: `G6NUC${String(i).padStart(4, "0")}` }));
    // Two expected machines, by the serial on their sticker; they match the rule too, and win over it.
    const pre = [];
    for (const [i, hostname] of [
      [6, "edge-a"],
      [13, "edge-b"],
    ] as const) {
      pre.push(
        await adminCall(server, "POST", "/api/v1/machines", {
          serial: nucs[i]!.serial,
          cluster_id: 1,
          hostname,
          role: "server",
          labels: { "example.com/rack": "r1" },
        }),
      );
    }
    const rule = await adminCall(server, "POST", "/api/v1/rules", {
      name: "site-a-nucs",
      cluster_id: 1,
      match: { manufacturer: nuc.manufacturer, product: nuc.product },
      limit: 3,
    });
    expect(rule).toMatchObject({ limit: 3, enabled: true, status: "active" });

    const answers = await Promise.all(nucs.map((m) => rack(server, m)));
    const approvedNow = answers.filter((a) => a.state === "approved");
    expect(approvedNow).toHaveLength(5);

    const rows = machinesIn(server);
    expect(rows).toHaveLength(20);
    const bySerial = new Map(rows.map((r) => [r.serial, r]));
    for (const [k, i] of [6, 13].entries()) {
      expect(bySerial.get(nucs[i]!.serial)).toMatchObject({
        state: "approved",
        approved_by: `machine:${pre[k]!.id}`,
        role_preference: "server",
        hostname: ["edge-a", "edge-b"][k],
      });
    }
    const byRule = rows.filter((r) => r.approved_by === "rule:site-a-nucs");
    expect(byRule).toHaveLength(3);
    expect(byRule.every((r) => r.state === "approved")).toBe(true);
    expect(rows.filter((r) => r.state === "pending")).toHaveLength(15);
    expect(rows.filter((r) => r.state === "pending").every((r) => r.approved_by === null)).toBe(true);

    // The rule is used up and says so; the pre-registrations name the machines they approved.
    const { rules } = await adminCall(server, "GET", "/api/v1/rules");
    expect(rules[0]).toMatchObject({ name: "site-a-nucs", limit: 0, approved_count: 3, status: "exhausted" });
    const { machines } = await adminCall(server, "GET", "/api/v1/machines");
    expect(machines.map((p: { machine_id: number }) => p.machine_id).sort()).toEqual([6, 13].map((i) => bySerial.get(nucs[i]!.serial)!.id).sort());

    // Every automatic approval is audited with who approved it.
    const audits = auditOf(server, "machine.approved");
    expect(audits.map((a) => a.actor).sort()).toEqual(
      [...pre.map((p) => `machine:${p.id}`), "rule:site-a-nucs", "rule:site-a-nucs", "rule:site-a-nucs"].sort(),
    );
    // The API filter agrees with the database.
    const pending = await adminCall(server, "GET", "/api/v1/nodes?state=pending&limit=10");
    expect(pending.nodes).toHaveLength(10);
    expect(pending.next_cursor).toEqual(expect.any(String));
    const rest = await adminCall(server, "GET", `/api/v1/nodes?state=pending&limit=10&cursor=${pending.next_cursor}`);
    expect(rest.nodes).toHaveLength(5);
    expect(rest.next_cursor).toBeNull();
    await server.stop();
    expect(server.output).not.toMatch(/SQLITE_BUSY|database is locked/);
  }, 90_000);

  it("50 machines enrolling at once against limit: 3 → exactly 3 approved, 47 pending, the limit at 0 and never below", async () => {
    const server = await startServer();
    await adminCall(server, "POST", "/api/v1/rules", { name: "next-three", cluster_id: 1, match: { serial_prefix: "RACE" }, limit: 3 });
    const crowd: Nuc[] = Array.from({ length: 50 }, (_, i) => ({ mac: testMac(0x200 + i), serial: `RACE${i}` }));
    const answers = await Promise.all(crowd.map((m) => rack(server, m)));
    expect(answers.filter((a) => a.state === "approved")).toHaveLength(3);
    const rows = machinesIn(server);
    expect(rows.filter((r) => r.state === "approved").map((r) => r.approved_by)).toEqual(["rule:next-three", "rule:next-three", "rule:next-three"]);
    expect(rows.filter((r) => r.state === "pending")).toHaveLength(47);
    const { rules } = await adminCall(server, "GET", "/api/v1/rules");
    expect(rules[0]).toMatchObject({ limit: 0, approved_count: 3, status: "exhausted" });
    expect(auditOf(server, "machine.approved")).toHaveLength(3);
    await server.stop();
  }, 90_000);

  it("a rule by source CIDR approves the machine at 127.0.0.1 and not its LAN neighbour at 127.0.0.2 claiming the same facts", async () => {
    const server = await startServer();
    await adminCall(server, "POST", "/api/v1/rules", { name: "bench-port", cluster_id: 1, match: { cidr: "127.0.0.1/32" } });
    const here = await rack(server, { mac: testMac(0x300), serial: "CIDR1" });
    const neighbour = await rack(server, { mac: testMac(0x301), serial: "CIDR1X", from: "127.0.0.2" });
    expect(here.state).toBe("approved");
    expect(neighbour.state).toBe("pending");
    // Explain says why, for each address.
    const near = await adminCall(server, "GET", "/api/v1/explain?ip=127.0.0.2&manufacturer=Intel%20Corporation");
    expect(near.approval).toBeNull();
    expect(near.why).toEqual([
      expect.objectContaining({ kind: "rule", name: "bench-port", matched: false, reason: "source 127.0.0.2 is not in 127.0.0.1/32" }),
    ]);
    const ok = await adminCall(server, "GET", "/api/v1/explain?ip=127.0.0.1");
    expect(ok.approval).toEqual({ by: "rule:bench-port", name: "bench-port" });
    await server.stop();
  }, 60_000);
});
