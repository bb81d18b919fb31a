/**
 * /metrics after a small storm against a real edgejoin: machines boot (iPXE script, seed),
 * enroll, one token is replayed, artifacts are missing, TFTP serves and refuses; every counter
 * must add up to exactly what the test did, and no label may carry a MAC.
 */
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { requireTools, run as runTool } from "../helpers/tools.js";
import { loopbackSettings, spawnServer, waitHealthy } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { enrollMachine, requestJson, type Enrolled } from "../ui/machines.js";

const outDir = fileURLToPath(new URL("../../.test-output/metrics/", import.meta.url));

/** Prometheus text → series name with sorted labels → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = [...(m[3] ?? "").matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}=${l[2]}`).sort();
    out.set(labels.length ? `${m[1]}{${labels.join(",")}}` : m[1]!, Number(m[4]));
  }
  return out;
}

const series = (name: string, labels: Record<string, string> = {}) => {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .sort();
  return l.length ? `${name}{${l.join(",")}}` : name;
};

describe("GET /metrics after a storm", () => {
  it("requests, enrollments, TFTP transfers and machines add up to what happened", { timeout: 90_000 }, async () => {
    requireTools({ atftp: "atftp" });
    mkdirSync(outDir, { recursive: true });
    const root = testTempDir("metrics-storm");
    const settings = await loopbackSettings(root);
    const server = spawnServer({ ...settings, EDGEJOIN_ADMIN_TOKEN: "metrics-storm-admin-token-0123456789" });
    await waitHealthy(server);
    const n = 8;
    const macs = Array.from({ length: n }, (_, i) => `52:54:00:5e:00:${(i + 1).toString(16).padStart(2, "0")}`);

    // Boot: the bare chain, then each machine's own script; then the seed and an enroll, all at once.
    expect((await fetch(`${server.url}/boot.ipxe`)).status).toBe(200);
    const boots = await Promise.all(macs.map((mac) => fetch(`${server.url}/boot.ipxe?mac=${mac}`)));
    expect(boots.map((r) => r.status)).toEqual(macs.map(() => 200));
    const enrolled: Enrolled[] = await Promise.all(macs.map((mac, i) => enrollMachine(server.url, mac, { serial: `SN-STORM-${i}`, product: "Q35" })));
    // One replay: the first machine's spent token again.
    const replay = await requestJson("POST", `${enrolled[0]!.nodeUrl}/api/v1/enroll`, {
      body: { token: enrolled[0]!.token, mac: macs[0] },
      ca: enrolled[0]!.ca,
    });
    expect(replay.status).toBe(409);
    // Two artifacts that are not there.
    for (const name of ["k3s/v1.31.4+k3s1/k3s", "nope.iso"]) expect((await fetch(`${server.url}/artifacts/${name}`)).status).toBe(404);

    // TFTP: the generated autoexec.ipxe twice, a missing file once.
    const tftpPort = settings.EDGEJOIN_TFTP_PORT!;
    const got = join(root, "got");
    for (let i = 0; i < 2; i++) {
      const r = await runTool("atftp", ["--get", "-r", "autoexec.ipxe", "-l", got, "127.0.0.1", tftpPort]);
      expect(r.code, r.stderr).toBe(0);
    }
    const size = statSync(got).size;
    const missing = await runTool("atftp", ["--get", "-r", "no-such-file.efi", "-l", join(root, "nothing"), "127.0.0.1", tftpPort]);
    expect(missing.code).not.toBe(0);

    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    const m = parseMetrics(text);
    const value = (name: string, labels: Record<string, string> = {}) => m.get(series(name, labels)) ?? 0;

    expect(value("edgejoin_http_requests_total", { route: "/boot.ipxe", status: "200", method: "GET" })).toBe(n + 1);
    expect(value("edgejoin_http_requests_total", { route: "/cloud-init/:mac/:file", status: "200", method: "GET" })).toBe(n);
    expect(value("edgejoin_http_requests_total", { route: "/api/v1/enroll", status: "201", method: "POST" })).toBe(n);
    expect(value("edgejoin_http_requests_total", { route: "/api/v1/enroll", status: "409", method: "POST" })).toBe(1);
    expect(value("edgejoin_http_requests_total", { route: "/artifacts/*", status: "404", method: "GET" })).toBe(2);
    expect(value("edgejoin_http_request_duration_seconds_count", { route: "/cloud-init/:mac/:file", method: "GET" })).toBe(n);
    expect(value("edgejoin_enrollments_total", { result: "enrolled" })).toBe(n);
    expect(value("edgejoin_enrollments_total", { result: "token_replayed" })).toBe(1);
    expect(value("edgejoin_tftp_transfers_total", { result: "done" })).toBe(2);
    expect(value("edgejoin_tftp_transfers_total", { result: "not_found" })).toBe(1);
    expect(value("edgejoin_tftp_bytes_total")).toBe(2 * size);
    expect(value("edgejoin_machines", { state: "pending", cluster: "default" })).toBe(n);
    expect(value("edgejoin_cluster_servers_ready", { cluster: "default" })).toBe(0);
    // Node's own process metrics are there too.
    expect(m.has("process_cpu_user_seconds_total")).toBe(true);
    expect(m.has("nodejs_eventloop_lag_seconds")).toBe(true);
    // Route labels are patterns: no MAC (in any spelling) appears in any label.
    expect(text).not.toMatch(/52:54:00|525400/i);
    // Kept for the report: the edgejoin_ series as scraped.
    writeFileSync(
      join(outDir, "metrics-after-storm.txt"),
      text
        .split("\n")
        .filter((l) => l.startsWith("edgejoin_"))
        .join("\n"),
    );
  });
});
