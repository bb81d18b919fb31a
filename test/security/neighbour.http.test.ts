/**
 * Issue 9's findings against the real edgejoin process on loopback: 127.0.0.1 plays the real
 * machines and the admin, a second client bound to 127.0.0.2 plays the neighbour on the LAN.
 * Node API calls go to the server's node URL (HTTPS, its own CA) through `LoopbackClient`.
 */
import { createSocket } from "node:dgram";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loopbackSettings, spawnServer, waitHealthy, type ServerRun } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { testCaHash } from "../quorum/fixtures.js";
import { LoopbackClient } from "./neighbour-client.js";

const adminToken = "neighbour-admin-token-0123456789abcdef";

async function start(
  prepare?: (root: string, env: Record<string, string>) => void,
): Promise<{ server: ServerRun; real: LoopbackClient; neighbour: LoopbackClient; root: string; env: Record<string, string> }> {
  const root = testTempDir("neighbour");
  const env = { ...(await loopbackSettings(root)), EDGEJOIN_ADMIN_TOKEN: adminToken, EDGEJOIN_LOG_LEVEL: "info" };
  prepare?.(root, env);
  const server = spawnServer(env);
  await waitHealthy(server);
  return { server, root, env, real: new LoopbackClient(server, "127.0.0.1", adminToken), neighbour: new LoopbackClient(server, "127.0.0.2") };
}

/** A machine on 127.0.0.1: boot, seed, enroll with its identity; its node id and credential header. */
async function enrollReal(real: LoopbackClient, mac: string, uuid: string) {
  expect((await real.get(`/boot.ipxe?mac=${encodeURIComponent(mac)}&uuid=${uuid}&serial=SN-${uuid.slice(0, 4)}&arch=x86_64`)).status).toBe(200);
  const res = await real.enrollAs(mac, { uuid, serial: `SN-${uuid.slice(0, 4)}`, arch: "x86_64" });
  expect(res.status, res.text).toBe(201);
  return { id: res.json().node_id as number, auth: { authorization: `Bearer ${res.json().credential as string}` } };
}

describe("a LAN neighbour on 127.0.0.2 against a real edgejoin", () => {
  it("cannot get a second credential, reset, re-image or redirect a machine; what it tried is on the machine for the admin", { timeout: 90_000 }, async () => {
    const { server, real, neighbour } = await start();
    const m1 = "52:54:00:0a:00:01";
    const m2 = "52:54:00:0a:00:02";

    // The neighbour reads the seed before the machine enrolls (it is public), then races it.
    expect((await real.get(`/boot.ipxe?mac=${encodeURIComponent(m1)}&arch=x86_64`)).status).toBe(200);
    const stolen = await neighbour.seedToken(m1);
    const init = await enrollReal(real, m1, "11111111-0000-4000-8000-000000000001");
    const second = await neighbour.post("/api/v1/enroll", { token: stolen, mac: m1 });
    expect(second.status, second.text).toBe(409);
    expect(second.json()).toMatchObject({ error: "already_enrolled" });
    expect(second.json().credential).toBeUndefined();

    // The admin sees it: on the node, and in its audit trail, with the neighbour's address.
    const node = (await real.get(`/api/v1/nodes/${init.id}`, { admin: true })).json();
    expect(node.conflicts).toEqual([expect.objectContaining({ source_ip: "127.0.0.2" })]);
    const trail = (await real.get(`/api/v1/nodes/${init.id}/events`, { admin: true })).json();
    expect(trail.audit).toEqual(expect.arrayContaining([expect.objectContaining({ action: "enroll.conflict", source_ip: "127.0.0.2" })]));
    // No approval without looking; then the real machine carries on.
    expect((await real.post(`/api/v1/nodes/${init.id}/approve`, {}, { admin: true })).json()).toMatchObject({ error: "unresolved_conflict" });
    expect((await real.post(`/api/v1/nodes/${init.id}/approve`, { dismiss_conflicts: true }, { admin: true })).status).toBe(200);
    const cfg = await real.get("/api/v1/node/config", { headers: init.auth });
    expect(cfg.status).toBe(200);
    expect(parse(cfg.json().config_yaml)).toMatchObject({ "cluster-init": true });
    expect((await real.post("/api/v1/node/events", { type: "k3s-started" }, { headers: init.auth })).status).toBe(202);
    expect((await real.post("/api/v1/node/events", { type: "ready", ca_hash: testCaHash }, { headers: init.auth })).status).toBe(202);

    // Joined: the seed carries no token any more, a second enroll with an old one changes nothing,
    // and boot.ipxe keeps the disk whatever the neighbour says about the machine.
    await expect(neighbour.seedToken(m1)).rejects.toThrow(/bootstrap-token/);
    expect((await neighbour.post("/api/v1/enroll", { token: stolen, mac: m1 })).status).toBe(409);
    const spoofed = await neighbour.get(`/boot.ipxe?mac=${encodeURIComponent(m1)}&arch=arm64&uuid=22222222-0000-4000-8000-000000000002&serial=EVIL`);
    expect(spoofed.text).toContain("booting from its local disk");
    expect((await real.get(`/api/v1/nodes/${init.id}`, { admin: true })).json().reported).toMatchObject({ ip: "127.0.0.2", arch: "arm64", serial: "EVIL" });
    expect((await real.get(`/boot.ipxe?mac=${encodeURIComponent(m1)}&arch=x86_64`)).text).toContain("booting from its local disk");
    const after = (await real.get(`/api/v1/nodes/${init.id}`, { admin: true })).json();
    expect(after).toMatchObject({ state: "joined", role: "init", last_ip: "127.0.0.1", arch: "x86_64", uuid: "11111111-0000-4000-8000-000000000001" });
    const disagreed = (await real.get(`/api/v1/nodes/${init.id}/events`, { admin: true })).json().audit;
    expect(disagreed).toEqual(expect.arrayContaining([expect.objectContaining({ action: "machine.sighting_disagrees", source_ip: "127.0.0.2" })]));
    // The second attempt is a new conflict: the machine gets no k3s secrets until the admin looked (a denial it sees).
    const held = await real.get("/api/v1/node/config", { headers: init.auth });
    expect([held.status, held.json().reason]).toEqual([202, "conflict"]);
    expect((await real.post(`/api/v1/nodes/${init.id}/approve`, { dismiss_conflicts: true }, { admin: true })).json()).toMatchObject({
      state: "joined",
      conflicts: [],
    });
    expect((await real.get("/api/v1/node/config", { headers: init.auth })).status).toBe(200);

    // The next machine joins the real init, not the neighbour's address, and gets the x86 binary.
    const agent = await enrollReal(real, m2, "11111111-0000-4000-8000-000000000002");
    expect((await real.post(`/api/v1/nodes/${agent.id}/approve`, {}, { admin: true })).status).toBe(200);
    const agentCfg = await real.get("/api/v1/node/config", { headers: agent.auth });
    expect(agentCfg.status, `${agentCfg.text} ${JSON.stringify((await real.get(`/api/v1/nodes/${init.id}`, { admin: true })).json())}`).toBe(200);
    const k3s = parse(agentCfg.json().config_yaml) as Record<string, unknown>;
    expect(k3s.server).toBe("https://127.0.0.1:6443");
    expect(agentCfg.text).not.toContain("127.0.0.2");
    expect((await real.get("/api/v1/clusters/1/quorum", { admin: true })).json().health).toBe("ok");
    expect(server.stderr()).not.toMatch(/unhandled error/);
  });

  it("inventing MACs: first sightings from one address stop at its bound; machines elsewhere on the LAN are still recorded", { timeout: 120_000 }, async () => {
    const { real, neighbour } = await start();
    let refused = 0;
    // 672 new MACs, 24 at a time (the finding: 10,000 in 18 s).
    for (let batch = 0; batch < 28; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 24 }, (_, k) => {
          const i = batch * 24 + k;
          return neighbour.get(`/boot.ipxe?mac=02:00:00:00:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`);
        }),
      );
      for (const res of answers) {
        expect(res.status).toBe(200);
        if (res.headers["x-edgejoin-error"] === "rate_limited") refused++;
      }
    }
    // A burst of 600 per address, then one a second.
    expect(refused).toBeGreaterThanOrEqual(20);
    const before = (await real.get("/api/v1/nodes?limit=1000", { admin: true })).json().nodes.length as number;
    expect(before).toBe(672 - refused);
    expect((await real.get("/boot.ipxe?mac=52:54:00:0b:00:01")).headers["x-edgejoin-error"]).toBeUndefined();
    expect((await real.get("/api/v1/nodes?limit=1000", { admin: true })).json().nodes.length).toBe(before + 1);
  });

  it("a client that aborts mid-body → no 500, no error or stack in the log; the data folder made 0755 beforehand is 0700", async () => {
    const { server, root } = await start((r) => mkdirSync(join(r, "data"), { mode: 0o755 }));
    expect(statSync(join(root, "data")).mode & 0o777).toBe(0o700);
    const url = new URL(server.url);
    for (const path of ["/api/v1/clusters", `/install-progress/525400aa0001?token=x`]) {
      await new Promise<void>((resolve) => {
        const socket = connect({ host: url.hostname, port: Number(url.port), localAddress: "127.0.0.2" }, () => {
          socket.write(
            `POST ${path} HTTP/1.1\r\nhost: ${url.host}\r\nauthorization: Bearer ${adminToken}\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{"name":"half`,
          );
          setTimeout(() => {
            socket.destroy();
            resolve();
          }, 200);
        });
        socket.on("error", () => resolve());
      });
    }
    await new Promise((r) => setTimeout(r, 300));
    const log = `${server.stdout()}${server.stderr()}`;
    expect(log).not.toMatch(/unhandled error|"level":50|\bat .+\.ts:\d+/);
    expect(log).not.toMatch(/"status":500/);
  });
});

describe("TFTP transfer caps", () => {
  it("300 un-ACKed read requests from one client → a few transfers start, the rest get an ERROR packet (server busy)", async () => {
    const { env } = await start((r) => writeFileSync(join(r, "boot", "undionly.kpxe"), Buffer.alloc(64 * 1024, 1)));
    const socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.2", resolve));
    const answers = { oack: 0, busy: 0, other: 0 };
    socket.on("message", (msg) => {
      const op = msg.readUInt16BE(0);
      if (op === 6) answers.oack++;
      else if (op === 5 && msg.toString("latin1").includes("busy")) answers.busy++;
      else answers.other++;
    });
    // RRQ with tsize: the server answers an OACK and waits for an ACK that never comes.
    const rrq = Buffer.from("\x00\x01undionly.kpxe\x00octet\x00tsize\x000\x00", "latin1");
    for (let i = 0; i < 300; i++) socket.send(rrq, Number(env.EDGEJOIN_TFTP_PORT), "127.0.0.1");
    await new Promise((r) => setTimeout(r, 1_500));
    socket.close();
    expect(answers.oack).toBeGreaterThan(0);
    expect(answers.oack).toBeLessThanOrEqual(16);
    // (UDP may drop a few of a 300-packet burst on the way in.)
    expect(answers.busy).toBeGreaterThanOrEqual(200);
  });
});
