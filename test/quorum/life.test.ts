/** The whole life of one machine, over HTTP only: boot.ipxe → user-data → enroll → approve → config → events → joined. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeTestApp, testAdminToken, testPublicUrl } from "../helpers/app.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { bootstrapTokenOf, parseConfigBody, testCaHash } from "./fixtures.js";

const mac = "52:54:00:aa:bb:01";
const admin = { authorization: `Bearer ${testAdminToken}` };
const json = { "content-type": "application/json" };

function lab(env: Record<string, string> = {}) {
  const t = makeTestApp({ env });
  const req = async (method: string, path: string, o: { body?: unknown; headers?: Record<string, string> } = {}) => {
    const res = await t.app.request(path, {
      method,
      headers: { ...(o.body === undefined ? {} : json), ...o.headers },
      ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      text,
      cacheControl: res.headers.get("cache-control"),
      body: (res.headers.get("content-type") ?? "").includes("json") ? (JSON.parse(text) as Record<string, any>) : {},
    };
  };
  /** boot.ipxe → user-data → enroll: the machine's node id and credential. */
  const enroll = async () => {
    const boot = await req("GET", `/boot.ipxe?mac=${encodeURIComponent(mac)}&arch=x86_64`);
    expect(boot.status).toBe(200);
    expect(boot.text).toMatch(/^#!ipxe/);
    expect(boot.text).toContain(`/cloud-init/${mac}/`);
    const ud = await req("GET", `/cloud-init/${mac}/user-data`);
    expect(ud.status).toBe(200);
    const enrolled = await req("POST", "/api/v1/enroll", { body: { token: bootstrapTokenOf(ud.text), mac, arch: "x86_64", hostname: "nuc-01" } });
    expect(enrolled.status).toBe(201);
    expect(enrolled.body.state).toBe("pending");
    return { id: enrolled.body.node_id as number, auth: { authorization: `Bearer ${enrolled.body.credential as string}` } };
  };
  return { ...t, req, enroll };
}

describe("one machine's whole life", () => {
  it("boot.ipxe → user-data → enroll → approve → config → k3s-started → ready → joined, then local disk", async () => {
    const l = lab();
    const { id, auth } = await l.enroll();

    const waiting = await l.req("GET", "/api/v1/node/config", { headers: auth });
    expect(waiting.status).toBe(202);
    expect(waiting.body).toMatchObject({ state: "pending", reason: "pending_approval" });
    expect(waiting.body.retry_after).toBeGreaterThan(0);

    expect((await l.req("POST", `/api/v1/nodes/${id}/approve`, { body: {}, headers: admin })).body.state).toBe("approved");

    const cfg = await l.req("GET", "/api/v1/node/config", { headers: auth });
    expect(cfg.status).toBe(200);
    expect(cfg.cacheControl).toBe("no-store");
    expect(cfg.body).toMatchObject({
      role: "init",
      k3s_version: l.config.k3sVersion,
      install: {
        script_url: "https://get.k3s.io",
        binary_url: null,
        env: { INSTALL_K3S_VERSION: l.config.k3sVersion, INSTALL_K3S_EXEC: "server" },
      },
    });
    expect(cfg.body.install.env.INSTALL_K3S_SKIP_DOWNLOAD).toBeUndefined();
    const k3s = parseConfigBody(cfg.body as never);
    expect(k3s["cluster-init"]).toBe(true);
    const node = () => l.req("GET", `/api/v1/nodes/${id}`, { headers: admin }).then((r) => r.body);
    expect(await node()).toMatchObject({ state: "provisioning", role: "init" });
    expect(k3s["node-name"]).toBe((await node()).hostname);

    for (const [type, extra] of [
      ["installing", {}],
      ["k3s-started", {}],
      ["ready", { ca_hash: testCaHash.toUpperCase() }],
    ] as const) {
      const res = await l.req("POST", "/api/v1/node/events", { body: { type, ...extra }, headers: auth });
      expect(res.status, type).toBe(202);
    }
    expect(await node()).toMatchObject({ state: "joined", role: "init" });

    const again = await l.req("GET", "/api/v1/node/config", { headers: auth });
    expect(again.body).toEqual(cfg.body);
    const boot = await l.req("GET", `/boot.ipxe?mac=${encodeURIComponent(mac)}`);
    expect(boot.text).toMatch(/sanboot|exit/);
    expect(boot.text).not.toContain("kernel ");

    const q = await l.req("GET", "/api/v1/clusters/1/quorum", { headers: admin });
    expect(q.body).toMatchObject({ health: "ok", servers_ready: 1, ca_hash: testCaHash, servers: [{ machine_id: id, role: "init", state: "joined" }] });
  });

  it("k3s installer and binary in the artifacts folder → served by edgejoin, with INSTALL_K3S_SKIP_DOWNLOAD", async () => {
    const artifacts = testTempDir("artifacts");
    const l = lab({ EDGEJOIN_ARTIFACTS_DIR: artifacts });
    const version = l.config.k3sVersion;
    mkdirSync(join(artifacts, "k3s", version), { recursive: true });
    writeFileSync(join(artifacts, "k3s", "install.sh"), "#!/bin/sh\necho install\n");
    writeFileSync(join(artifacts, "k3s", version, "k3s"), "ELF-ish");
    // The default installer's files too: /boot.ipxe answers a console message while they are missing.
    mkdirSync(join(artifacts, "ubuntu", "casper"), { recursive: true });
    for (const f of ["ubuntu/casper/vmlinuz", "ubuntu/casper/initrd", "ubuntu/ubuntu-live-server-amd64.iso"]) writeFileSync(join(artifacts, f), "");
    const { id, auth } = await l.enroll();
    await l.req("POST", `/api/v1/nodes/${id}/approve`, { body: { role: "auto" }, headers: admin });
    const cfg = await l.req("GET", "/api/v1/node/config", { headers: auth });
    expect(cfg.body.install).toEqual({
      script_url: `${testPublicUrl}/artifacts/k3s/install.sh`,
      binary_url: `${testPublicUrl}/artifacts/k3s/${encodeURIComponent(version)}/k3s`,
      env: { INSTALL_K3S_VERSION: version, INSTALL_K3S_EXEC: "server", INSTALL_K3S_SKIP_DOWNLOAD: "true" },
      airgap_images_url: null,
    });
    // The URLs answer: the agent can fetch both from edgejoin.
    for (const url of [cfg.body.install.script_url as string, cfg.body.install.binary_url as string]) {
      const res = await l.req("GET", url.slice(testPublicUrl.length));
      expect(res.status, url).toBe(200);
    }
  });

  it("a machine retired through the API → its credential revoked: 401 on config and events", async () => {
    const l = lab();
    const { id, auth } = await l.enroll();
    await l.req("POST", `/api/v1/nodes/${id}/approve`, { body: {}, headers: admin });
    expect((await l.req("GET", "/api/v1/node/config", { headers: auth })).status).toBe(200);
    expect((await l.req("POST", `/api/v1/nodes/${id}/retire`, { body: {}, headers: admin })).body).toMatchObject({ state: "retired", role: null });
    // Retiring revokes every credential issued before it.
    const cfg = await l.req("GET", "/api/v1/node/config", { headers: auth });
    expect(cfg.status).toBe(401);
    expect(cfg.body.error).toBe("credential_revoked");
    expect((await l.req("POST", "/api/v1/node/events", { body: { type: "ready" }, headers: auth })).status).toBe(401);
  });

  it("a seat taken back by the lease → 403 seat_revoked on config; a late ready → 403 and split_brain_risk in the quorum", async () => {
    const l = lab();
    const { id, auth } = await l.enroll();
    await l.req("POST", `/api/v1/nodes/${id}/approve`, { body: {}, headers: admin });
    expect((await l.req("GET", "/api/v1/node/config", { headers: auth })).body.role).toBe("init");
    l.clock.advance(l.config.roleLeaseMs);
    const cfg = await l.req("GET", "/api/v1/node/config", { headers: auth });
    expect(cfg.status).toBe(403);
    expect(cfg.body.error).toBe("seat_revoked");
    const late = await l.req("POST", "/api/v1/node/events", { body: { type: "ready", ca_hash: testCaHash }, headers: auth });
    expect(late.status).toBe(403);
    expect(late.body.error).toBe("seat_revoked");
    const q = await l.req("GET", "/api/v1/clusters/1/quorum", { headers: admin });
    expect(q.body).toMatchObject({ health: "split_brain_risk", split_brain_risk: [id], servers: [] });
    // The admin dealt with it and retired the machine: the alarm closes.
    await l.req("POST", `/api/v1/nodes/${id}/retire`, { body: { reason: "wiped the rogue k3s" }, headers: admin });
    expect((await l.req("GET", "/api/v1/clusters/1/quorum", { headers: admin })).body).toMatchObject({ health: "forming", split_brain_risk: [] });
  });
});
