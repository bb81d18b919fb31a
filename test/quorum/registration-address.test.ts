/**
 * A cluster's registration address that nothing serves yet: create, change and read answer it
 * with a `registration_address_unserved` warning (and still accept it); once something listens on
 * ADDRESS:6443 (here a TCP listener on 127.0.0.66, standing in for kube-vip's VIP) the warning is
 * gone. A DNS name is not checked.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { answersTcp } from "../../server/net/reachable.js";
import { makeTestApp, testAdminToken } from "../helpers/app.js";

const admin = { authorization: `Bearer ${testAdminToken}`, "content-type": "application/json" };
// A loopback address of its own: nothing else in the tests listens on it, and 6443 is k3s's port.
const vip = "127.0.0.66";
const listeners: Server[] = [];
afterEach(async () => {
  for (const l of listeners.splice(0)) await new Promise<void>((r) => l.close(() => r()));
});

function client() {
  const t = makeTestApp();
  t.deps.probeTcp = answersTcp;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await t.app.request(path, { method, headers: admin, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, body: (await res.json()) as { id: number; warnings: { code: string; message: string }[] } };
  };
  return call;
}

describe("registration address nothing serves yet", () => {
  it("create, read and change with an address where nothing listens on 6443 → accepted, with the warning naming address and port", async () => {
    const call = client();
    const created = await call("POST", "/api/v1/clusters", { name: "vip-site", servers: 3, registration_address: vip });
    expect(created.status).toBe(201);
    expect(created.body.warnings).toEqual([{ code: "registration_address_unserved", message: expect.stringContaining(`nothing answers on ${vip}:6443 yet`) }]);
    expect(created.body.warnings[0]!.message).toContain("kube-vip");
    expect((await call("GET", `/api/v1/clusters/${created.body.id}`)).body.warnings).toHaveLength(1);
    const cleared = await call("PATCH", `/api/v1/clusters/${created.body.id}`, { registration_address: null });
    expect(cleared.status).toBe(200);
    expect(cleared.body.warnings).toEqual([]);
  });

  it("once something listens on ADDRESS:6443 → no warning", async () => {
    const server = createServer((s) => s.destroy());
    server.listen(6443, vip);
    await once(server, "listening");
    listeners.push(server);
    const call = client();
    const created = await call("POST", "/api/v1/clusters", { name: "vip-up", servers: 3, registration_address: vip });
    expect(created.status).toBe(201);
    expect(created.body.warnings).toEqual([]);
  });

  it("a DNS name → not checked, no warning (the machines' resolver decides, not edgejoin's)", async () => {
    const call = client();
    const created = await call("POST", "/api/v1/clusters", { name: "dns-site", registration_address: "k3s.site.example" });
    expect(created.body.warnings).toEqual([]);
  });
});
