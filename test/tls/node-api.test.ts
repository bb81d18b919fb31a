/**
 * The node API answers only over TLS, decided by the request's socket: route tests through
 * `app.request()` choose the socket they arrive on (`overTls`, a plain one, or none at all).
 */
import { describe, expect, it } from "vitest";
import { machines, usedTokens } from "../../db/schema.js";
import { makeTestApp, overTls, testCaCertPem } from "../helpers/app.js";
import { bootQuery, discoverAndEnroll, enroll, facts, mac, serial, tokenFor, uuid } from "../enrollment/fixtures.js";

/** What @hono/node-server hands the app for a request on the plain HTTP listener. */
const overPlainHttp = { incoming: { socket: { encrypted: false } } };

async function expectTlsRequired(res: Response) {
  expect(res.status).toBe(403);
  const body = (await res.json()) as { error: string; message: string };
  expect(body.error).toBe("tls_required");
  expect(body.message).toContain("https://10.77.0.1:8443");
  expect(JSON.stringify(body)).not.toMatch(/credential"|eyJ/);
}

describe("node API over plain HTTP", () => {
  it("enroll with a valid token over plain HTTP → 403 tls_required, nothing issued, token not spent; over TLS → 201", async () => {
    const t = makeTestApp();
    await t.app.request(`/boot.ipxe?${bootQuery}`);
    const { token } = await tokenFor(t);
    const body = JSON.stringify({ token, mac, uuid, serial, hostname: "ubuntu", ip: "10.77.0.50", arch: "x86_64", facts });
    const init = { method: "POST", headers: { "content-type": "application/json", "x-forwarded-proto": "https" }, body };
    // A header saying https changes nothing: only the socket counts.
    await expectTlsRequired(await t.app.request("/api/v1/enroll", init, overPlainHttp));
    expect(t.db.select().from(machines).get()!.state).toBe("discovered");
    expect(t.db.select().from(usedTokens).all()).toHaveLength(0);
    const res = await t.app.request("/api/v1/enroll", init, overTls);
    expect(res.status).toBe(201);
  });

  it("app.request without any socket (transport: http) → 403 tls_required for enroll, config and events", async () => {
    const t = makeTestApp({ transport: "http" });
    await t.app.request(`/boot.ipxe?${bootQuery}`);
    const { token } = await tokenFor(t);
    await expectTlsRequired(await enroll(t, token));
    await expectTlsRequired(await t.app.request("/api/v1/node/config", { headers: { authorization: "Bearer x" } }));
    await expectTlsRequired(await t.app.request("/api/v1/node/events", { method: "POST", body: "{}" }));
    expect(t.db.select().from(machines).get()!.state).toBe("discovered");
  });

  it("a live credential over plain HTTP → 403 tls_required for config and events, no k3s config; over TLS → answered", async () => {
    const t = makeTestApp();
    const { credential } = await discoverAndEnroll(t);
    const auth = { authorization: `Bearer ${credential}` };
    await expectTlsRequired(await t.app.request("/api/v1/node/config", { headers: auth }, overPlainHttp));
    await expectTlsRequired(
      await t.app.request(
        "/api/v1/node/events",
        { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ type: "installing" }) },
        overPlainHttp,
      ),
    );
    expect((await t.app.request("/api/v1/node/config", { headers: auth })).status).toBe(202);
  });

  it("iPXE, the NoCloud seed and the CA certificate stay on plain HTTP", async () => {
    const t = makeTestApp({ transport: "http" });
    expect((await t.app.request(`/boot.ipxe?${bootQuery}`)).status).toBe(200);
    expect((await t.app.request(`/cloud-init/${mac}/meta-data`)).status).toBe(200);
    const ca = await t.app.request("/.well-known/edgejoin-ca.pem");
    expect(ca.status).toBe(200);
    expect(ca.headers.get("content-type")).toBe("application/x-pem-file");
    expect(await ca.text()).toBe(testCaCertPem);
  });
});
