/**
 * Syslog counters in a real edgejoin's `/metrics`: real UDP datagrams from the address a machine
 * booted from (127.0.0.2), from an address no machine used (127.0.0.3) and garbage, each counted
 * once as filed or dropped with its reason, and the filed lines shown under the machine.
 */
import { createSocket, type Socket } from "node:dgram";
import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_LINES_PER_SOURCE_PER_SECOND } from "../../server/syslog/server.js";
import { freeUdpPort } from "../helpers/ports.js";
import { loopbackSettings, spawnServer, waitHealthy } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";

const adminToken = "syslog-metrics-admin-token-0123456789";
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

/** GET from a chosen loopback source address: how the server learns where a machine is. */
function getFrom(localAddress: string, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress, timeout: 10_000 }, (res) => {
      res.resume();
      res.once("end", () => resolve(res.statusCode ?? 0));
    });
    req.once("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
    req.once("error", reject);
    req.end();
  });
}

async function sender(address: string): Promise<Socket> {
  const s = createSocket("udp4");
  await new Promise<void>((resolve) => s.bind(0, address, () => resolve()));
  sockets.push(s);
  return s;
}

const send = (s: Socket, text: string, port: number) =>
  new Promise<void>((resolve, reject) => s.send(text, port, "127.0.0.1", (e) => (e ? reject(e) : resolve())));

/** The syslog samples of one scrape, by metric name and `reason` label. */
async function syslogCounters(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^edgejoin_syslog_messages_(\w+?)_total(?:\{reason="(\w+)"\})? (\d+)$/gm)) {
    out[m[2] ? `${m[1]}:${m[2]}` : m[1]!] = Number(m[3]);
  }
  return out;
}

/** The counters once `received` reaches `want` (or stops changing between two scrapes 200 ms apart); bounded at 10 s. */
async function settled(url: string, want?: number): Promise<Record<string, number>> {
  let last = await syslogCounters(url);
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const now = await syslogCounters(url);
    if (want !== undefined ? now.received === want : now.received === last.received) return now;
    last = now;
  }
  return last;
}

describe("syslog counters in /metrics, from real UDP datagrams", () => {
  it("received = filed + dropped by reason; lines from the machine's address are filed under it", { timeout: 60_000 }, async () => {
    const root = testTempDir("syslog-metrics");
    const port = await freeUdpPort();
    const server = spawnServer({
      ...(await loopbackSettings(root)),
      EDGEJOIN_ADMIN_TOKEN: adminToken,
      EDGEJOIN_SYSLOG_PORT: String(port),
      EDGEJOIN_LOG_LEVEL: "warn",
    });
    await waitHealthy(server);
    expect(await syslogCounters(server.url)).toEqual({
      received: 0,
      filed: 0,
      "dropped:malformed": 0,
      "dropped:unknown_source": 0,
      "dropped:rate_limited": 0,
      "dropped:store_failed": 0,
    });

    const mac = "52:54:00:5e:10:01";
    expect(await getFrom("127.0.0.2", `${server.url}/boot.ipxe?mac=${mac}`)).toBe(200);
    const machine = await sender("127.0.0.2");
    const stranger = await sender("127.0.0.3");
    await send(machine, "<14>ipxe: DHCP (net0 52:54:00:5e:10:01) ok", port);
    await send(machine, "<13>1 2026-12-01T09:00:00Z node edgejoin-agent 42 - - enrolled", port);
    await send(machine, "no priority, not syslog", port);
    await send(stranger, "<14>ipxe: from nowhere we know", port);
    let c = await settled(server.url, 4);
    expect(c).toEqual({
      received: 4,
      filed: 2,
      "dropped:malformed": 1,
      "dropped:unknown_source": 1,
      "dropped:rate_limited": 0,
      "dropped:store_failed": 0,
    });

    // A flood from the machine's address until the receiver cuts it at the per-source limit
    // (bounded: 10 s). Datagrams the kernel drops while the receiver is busy never count as
    // received; every one that arrived is in exactly one counter.
    const end = Date.now() + 10_000;
    for (let batch = 0; Date.now() < end && c["dropped:rate_limited"] === 0; batch++) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => send(machine, `<14>flood: line ${batch}-${j}`, port)));
      if (batch % 4 === 3) c = await syslogCounters(server.url);
    }
    c = await settled(server.url);
    expect(c["dropped:rate_limited"], `no line was over ${MAX_LINES_PER_SOURCE_PER_SECOND}/s in 10 s: ${JSON.stringify(c)}`).toBeGreaterThan(0);
    expect(c["dropped:malformed"]).toBe(1);
    expect(c["dropped:unknown_source"]).toBe(1);
    expect(c["dropped:store_failed"]).toBe(0);
    expect(c.filed! + c["dropped:malformed"]! + c["dropped:unknown_source"]! + c["dropped:rate_limited"]!).toBe(c.received);

    const nodes = (await (await fetch(`${server.url}/api/v1/nodes?q=${mac}`, { headers: { authorization: `Bearer ${adminToken}` } })).json()) as {
      nodes: { id: number }[];
    };
    const lines = (await (
      await fetch(`${server.url}/api/v1/nodes/${nodes.nodes[0]!.id}/syslog?limit=2`, { headers: { authorization: `Bearer ${adminToken}` } })
    ).json()) as Record<string, { message: string }[]>;
    const list = Object.values(lines).find(Array.isArray)!;
    expect(list.map((l) => l.message)).toEqual(["DHCP (net0 52:54:00:5e:10:01) ok", "enrolled"]);
  });
});
