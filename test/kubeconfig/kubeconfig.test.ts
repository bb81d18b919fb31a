/**
 * The cluster admin's kubeconfig: the init server's agent hands it in after ready (node credential,
 * over TLS); an admin gets it pointed at the registration address; both audited.
 */
import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { parse } from "yaml";
import { auditEvents } from "../../db/schema.js";
import { makeTestApp } from "../helpers/app.js";
import { admin, discoverAndEnroll } from "../enrollment/fixtures.js";
import { k3sYaml } from "./k3s-yaml.js";

type T = ReturnType<typeof makeTestApp>;
/** The init server's own requests: over TLS, from its address. */
const fromInit = { incoming: { socket: { remoteAddress: "10.77.0.50", remotePort: 40000, remoteFamily: "IPv4", encrypted: true } } };
const caHash = "a".repeat(64);

function put(t: T, credential: string, body: string, type = "application/yaml") {
  return t.app.request("/api/v1/node/kubeconfig", { method: "PUT", headers: { authorization: `Bearer ${credential}`, "content-type": type }, body });
}

async function event(t: T, credential: string, body: Record<string, unknown>) {
  const res = await t.app.request(
    "/api/v1/node/events",
    {
      method: "POST",
      headers: { authorization: `Bearer ${credential}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    },
    fromInit,
  );
  expect(res.status, await res.clone().text()).toBe(202);
}

/** One machine enrolled, approved, given the init seat; `ready` when asked. */
async function initServer(t: T, ready: boolean) {
  const { node_id, credential } = await discoverAndEnroll(t);
  expect((await t.app.request(`/api/v1/nodes/${node_id}/approve`, { method: "POST", headers: admin })).status).toBe(200);
  const cfg = await t.app.request("/api/v1/node/config", { headers: { authorization: `Bearer ${credential}` } }, fromInit);
  expect(cfg.status).toBe(200);
  expect(((await cfg.json()) as { role: string }).role).toBe("init");
  await event(t, credential, { type: "k3s-started" });
  if (ready) await event(t, credential, { type: "ready", ca_hash: caHash });
  return { node_id, credential };
}

describe("cluster kubeconfig", () => {
  it("init server hands it in after ready → admin gets it pointed at the init server's address, renamed after the cluster; both audited", async () => {
    const t = makeTestApp();
    const { node_id, credential } = await initServer(t, true);
    const up = await put(t, credential, k3sYaml);
    expect(up.status).toBe(200);
    expect(await up.json()).toEqual({ cluster_id: 1, stored: true });

    const res = await t.app.request("/api/v1/clusters/1/kubeconfig", { headers: admin });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const k = parse(await res.text());
    expect(k.clusters).toEqual([{ cluster: { "certificate-authority-data": "LS0tLS1CRUdJTi1DQS0tLS0t", server: "https://10.77.0.50:6443" }, name: "default" }]);
    expect(k["current-context"]).toBe("default");
    expect(k.users[0].user["client-key-data"]).toBe("LS0tLS1LRVktLS0tLQ==");

    const audit = t.db.select().from(auditEvents).all();
    expect(audit.find((a) => a.action === "cluster.kubeconfig_uploaded")).toMatchObject({ actor: `machine:${node_id}`, clusterId: 1 });
    expect(audit.find((a) => a.action === "cluster.kubeconfig_read")).toMatchObject({ actor: "admin:env", clusterId: 1 });
  });

  it("registration address set → the server is https://<registration address>:6443; names follow the cluster", async () => {
    const t = makeTestApp();
    const { credential } = await initServer(t, true);
    expect((await put(t, credential, k3sYaml)).status).toBe(200);
    const patch = await t.app.request("/api/v1/clusters/1", {
      method: "PATCH",
      headers: { ...admin, "content-type": "application/json" },
      body: JSON.stringify({ name: "site-a", registration_address: "k3s.site.example" }),
    });
    expect(patch.status).toBe(200);
    const k = parse(await (await t.app.request("/api/v1/clusters/1/kubeconfig", { headers: admin })).text());
    expect(k.clusters[0]).toMatchObject({ name: "site-a", cluster: { server: "https://k3s.site.example:6443" } });
    // Named after the edgejoin cluster, so several clusters' kubeconfigs merge without clashing.
    expect(k.contexts).toEqual([{ name: "site-a", context: { cluster: "site-a", user: "site-a" } }]);
    expect(k["current-context"]).toBe("site-a");
    expect(k.users[0].name).toBe("site-a");
  });

  it("before ready → 403 and nothing kept; not YAML or not a kubeconfig → 422; wrong type → 400; no kubeconfig yet → 404; no admin token → 401", async () => {
    const t = makeTestApp();
    const { credential } = await initServer(t, false);
    expect((await put(t, credential, k3sYaml)).status).toBe(403);
    expect((await t.app.request("/api/v1/clusters/1/kubeconfig", { headers: admin })).status).toBe(404);
    await event(t, credential, { type: "ready", ca_hash: caHash });
    expect((await put(t, credential, "kind: Config\nclusters: [\n")).status).toBe(422);
    expect((await put(t, credential, "kind: Pod\n")).status).toBe(422);
    expect((await put(t, credential, k3sYaml.replace("https://127.0.0.1", "http://127.0.0.1"))).status).toBe(422);
    expect((await put(t, credential, "a: &a [*a, *a]\nkind: Config\n")).status).toBe(422);
    expect((await put(t, credential, k3sYaml, "application/json")).status).toBe(400);
    expect((await t.app.request("/api/v1/clusters/1/kubeconfig")).status).toBe(401);
    expect((await t.app.request("/api/v1/clusters/99/kubeconfig", { headers: admin })).status).toBe(404);
    expect(t.db.select().from(auditEvents).where(eq(auditEvents.action, "cluster.kubeconfig_uploaded")).all()).toHaveLength(0);
  });

  it("over plain HTTP → 403 tls_required, nothing kept", async () => {
    const t = makeTestApp();
    const { credential } = await initServer(t, true);
    const plain = await t.app.request(
      "/api/v1/node/kubeconfig",
      { method: "PUT", headers: { authorization: `Bearer ${credential}`, "content-type": "application/yaml" }, body: k3sYaml },
      {},
    );
    expect(plain.status).toBe(403);
    expect((await t.app.request("/api/v1/clusters/1/kubeconfig", { headers: admin })).status).toBe(404);
  });
});
