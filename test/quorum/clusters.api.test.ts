import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { clusters, machines } from "../../db/schema.js";
import { makeTestApp, testAdminToken } from "../helpers/app.js";
import { addApproved, testCaHash } from "./fixtures.js";
import { answerConfigRequest, answerNodeEvent } from "../../server/http/node.js";

const admin = { authorization: `Bearer ${testAdminToken}`, "content-type": "application/json" };

function client() {
  const t = makeTestApp();
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = admin) => {
    const res = await t.app.request(path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  return { ...t, call };
}

const site = {
  name: "site-a",
  servers: 3,
  registration_address: "10.20.0.5",
  k3s_version: "v1.30.6+k3s1",
  labels: { "example.com/site": "a" },
  taints: ["CriticalAddonsOnly=true:NoExecute"],
  hostname_pattern: "a-{mac}",
  match_cidrs: ["10.20.0.0/16"],
  installer: { kind: "cloud-image", kernel_url: "debian/vmlinuz", initrd_urls: ["debian/initrd.img"], kernel_args: "console=ttyS0 ip=dhcp", iso_url: null },
};

describe("clusters API", () => {
  it("create → 201 with every field in snake_case, tokens made but never returned by create, list or get", async () => {
    const c = client();
    const created = await c.call("POST", "/api/v1/clusters", site);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ ...site, is_default: false, installer: { ...site.installer } });
    const row = c.db.select().from(clusters).where(eq(clusters.id, created.body.id)).get()!;
    expect(row.serverToken).toMatch(/^[0-9a-f]{64}$/);
    expect(row.agentToken).toMatch(/^[0-9a-f]{64}$/);
    expect(row.agentToken).not.toBe(row.serverToken);
    const list = await c.call("GET", "/api/v1/clusters");
    const get = await c.call("GET", `/api/v1/clusters/${created.body.id}`);
    for (const text of [JSON.stringify(created.body), JSON.stringify(list.body), JSON.stringify(get.body)]) {
      expect(text).not.toContain(row.serverToken);
      expect(text).not.toContain(row.agentToken);
      expect(text).not.toMatch(/token/);
    }
    expect(list.body.clusters.map((x: { name: string }) => x.name)).toEqual(["default", "site-a"]);
    // GET adds which files under /artifacts/ the cluster still lacks (server/clusters/artifacts.ts).
    const { artifacts, ...same } = get.body;
    expect(same).toEqual(created.body);
    expect(artifacts.missing).toContain("k3s/install.sh");
  });

  it('servers 2, 4, 9 or "3" → 422 saying embedded etcd needs an odd count', async () => {
    const c = client();
    for (const servers of [2, 4, 9, 0, "3"]) {
      const res = await c.call("POST", "/api/v1/clusters", { name: `x${String(servers)}`, servers });
      expect(res.status, String(servers)).toBe(422);
      expect(res.body.error).toBe("validation_failed");
      expect(res.body.message).toMatch(/servers.*1, 3, 5 or 7/);
    }
    const patch = await c.call("PATCH", "/api/v1/clusters/1", { servers: 4 });
    expect(patch.status).toBe(422);
    expect(patch.body.message).toMatch(/odd number/);
  });

  it("name that is not a DNS label → 422; a taken name → 409", async () => {
    const c = client();
    for (const name of ["Site A", "site_a", "-a", "a".repeat(64), "a\nb", ""]) {
      const res = await c.call("POST", "/api/v1/clusters", { name });
      expect(res.status, JSON.stringify(name)).toBe(422);
    }
    expect((await c.call("POST", "/api/v1/clusters", { name: "default" })).status).toBe(409);
  });

  it("installer values that could inject into an iPXE script → 422, nothing stored", async () => {
    const c = client();
    const bad = [
      { kernel_url: "http://x/vmlinuz\nshell" },
      { kernel_url: "http://x/${net0/mac}" },
      { kernel_url: "http://x/a b" },
      { initrd_urls: ['http://x/initrd"q'] },
      { initrd_urls: [] },
      { kernel_args: "quiet\nchain http://evil/" },
      { kernel_args: "a\tb" },
      { kernel_args: "ds=nocloud;s=http://evil/" },
      { iso_url: "x y" },
      { mirror_url: "ftp://mirror/" },
      { mirror_url: "https://mirror.example.test/ubuntu" },
      { password_hash: "hunter2" },
      { ssh_authorized_keys: ["ssh-ed25519 AAAA\nruncmd"] },
    ];
    for (const change of bad) {
      const res = await c.call("POST", "/api/v1/clusters", { name: "inj", installer: { ...site.installer, ...change } });
      expect(res.status, JSON.stringify(change)).toBe(422);
    }
    expect(c.db.select().from(clusters).all()).toHaveLength(1);
  });

  it("labels the kubelet may set on itself (node.kubernetes.io, topology zone/region) → accepted", async () => {
    const c = client();
    const labels = { "topology.kubernetes.io/zone": "site-a", "node.kubernetes.io/edge": "true", "example.com/rack": "r1" };
    const res = await c.call("POST", "/api/v1/clusters", { ...site, labels });
    expect(res.status).toBe(201);
    expect(res.body.labels).toEqual(labels);
  });

  it("labels, taints, CIDRs, hostname pattern and registration address outside their formats → 422", async () => {
    const c = client();
    const bad = [
      { labels: { "bad key": "x" } },
      { labels: { ok: "a\nb" } },
      { labels: { "kubernetes.io/role": "edge" } },
      { labels: { "node-role.kubernetes.io/worker": "true" } },
      { taints: ["key=value"] },
      { taints: ["k=v:Sometimes"] },
      { match_cidrs: ["10.0.0.0/33"] },
      { match_cidrs: ["fd00::/8"] },
      { hostname_pattern: "node" },
      { hostname_pattern: "Node-{mac}" },
      { hostname_pattern: "{mac}-" },
      { registration_address: "https://vip:6443" },
      { registration_address: "a b" },
      { k3s_version: "latest" },
      { unknown_field: 1 },
    ];
    for (const change of bad) {
      const res = await c.call("POST", "/api/v1/clusters", { name: "bad", ...change });
      expect(res.status, JSON.stringify(change)).toBe(422);
    }
  });

  it("user_data_template → must name a template that exists inside the templates folder", async () => {
    const c = client();
    const ok = await c.call("POST", "/api/v1/clusters", { name: "own", user_data_template: "cloud-init/cloud-image.user-data.mustache" });
    expect(ok.status).toBe(201);
    expect(ok.body.user_data_template).toBe("cloud-init/cloud-image.user-data");
    for (const path of ["../../etc/passwd", "/etc/passwd", "cloud-init/missing.user-data", "a b"]) {
      const res = await c.call("POST", "/api/v1/clusters", { name: "bad", user_data_template: path });
      expect(res.status, path).toBe(422);
    }
    expect((await c.call("PATCH", `/api/v1/clusters/${ok.body.id}`, { user_data_template: null })).body.user_data_template).toBeNull();
  });

  it("exactly one default: a new default takes the flag; un-defaulting the default → 422", async () => {
    const c = client();
    const created = await c.call("POST", "/api/v1/clusters", { ...site, is_default: true });
    expect(created.body.is_default).toBe(true);
    const all = (await c.call("GET", "/api/v1/clusters")).body.clusters as { name: string; is_default: boolean }[];
    expect(all.filter((x) => x.is_default).map((x) => x.name)).toEqual(["site-a"]);
    const refused = await c.call("PATCH", `/api/v1/clusters/${created.body.id}`, { is_default: false });
    expect(refused.status).toBe(422);
    expect(refused.body.message).toMatch(/exactly one cluster is the default/);
    const back = await c.call("PATCH", "/api/v1/clusters/1", { is_default: true });
    expect(back.body.is_default).toBe(true);
    expect((await c.call("GET", `/api/v1/clusters/${created.body.id}`)).body.is_default).toBe(false);
  });

  it("patch → changes only the given fields; lowering servers below the seats held → 422", async () => {
    const c = client();
    const patched = await c.call("PATCH", "/api/v1/clusters/1", { servers: 3, labels: { zone: "b" } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ name: "default", servers: 3, labels: { zone: "b" } });
    for (let n = 1; n <= 3; n++) {
      const m = addApproved(c.db, { n, clusterId: 1, now: c.clock() });
      answerConfigRequest(c.deps, m);
      answerNodeEvent(c.deps, m, { type: "ready", caHash: testCaHash });
    }
    const lower = await c.call("PATCH", "/api/v1/clusters/1", { servers: 1 });
    expect(lower.status).toBe(422);
    expect(lower.body.message).toMatch(/3 machines hold server seats/);
  });

  it("no admin token → 401; unknown cluster → 404; bad id → 422", async () => {
    const c = client();
    expect((await c.call("GET", "/api/v1/clusters", undefined, {})).status).toBe(401);
    expect((await c.call("POST", "/api/v1/clusters", site, { "content-type": "application/json" })).status).toBe(401);
    expect((await c.call("GET", "/api/v1/clusters/1/quorum", undefined, { authorization: "Bearer wrong-token-wrong-token-wrong" })).status).toBe(401);
    expect((await c.call("GET", "/api/v1/clusters/99")).status).toBe(404);
    expect((await c.call("GET", "/api/v1/clusters/99/quorum")).status).toBe(404);
    expect((await c.call("GET", "/api/v1/clusters/abc")).status).toBe(422);
  });

  it("quorum → init first, then servers with machine, state and since; agents counted; health", async () => {
    const c = client();
    await c.call("PATCH", "/api/v1/clusters/1", { servers: 3 });
    const ids: number[] = [];
    for (let n = 1; n <= 4; n++) {
      const m = addApproved(c.db, { n, clusterId: 1, now: c.clock() });
      ids.push(m.id);
      answerConfigRequest(c.deps, m);
      if (n < 3) answerNodeEvent(c.deps, m, { type: "ready", caHash: testCaHash });
    }
    const q = await c.call("GET", "/api/v1/clusters/1/quorum");
    expect(q.status).toBe(200);
    expect(q.body).toMatchObject({ cluster_id: 1, health: "forming", servers_desired: 3, servers_ready: 2, majority: 2 });
    expect(q.body.servers.map((s: { machine_id: number; role: string; state: string }) => [s.machine_id, s.role, s.state])).toEqual([
      [ids[0], "init", "joined"],
      [ids[1], "server", "joined"],
      [ids[2], "server", "provisioning"],
    ]);
    expect(q.body.servers[0].since).toMatch(/^\d{4}-\d\d-\d\dT/);
    // Every server seat is held and a server is ready: the fourth machine is an agent.
    expect(q.body.agents).toEqual({ total: 1, by_state: { provisioning: 1 } });

    const retired = await c.call("POST", `/api/v1/nodes/${ids[1]}/retire`, { reason: "disk failed" });
    expect(retired.status).toBe(200);
    expect(retired.body).toMatchObject({ state: "retired", role: null });
    expect(c.db.select().from(machines).where(eq(machines.id, ids[1]!)).get()!.state).toBe("retired");
    expect((await c.call("POST", "/api/v1/nodes/999/retire", {})).status).toBe(404);
  });
});
