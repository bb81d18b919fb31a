import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { generateKeyPairSync } from "node:crypto";
import { Writable } from "node:stream";
import pino from "pino";
import { base64url, SignJWT } from "jose";
import { auditEvents, clusters, machines, usedTokens } from "../../db/schema.js";
import { createApp, makeDeps } from "../../server/app.js";
import { issueNodeCredential } from "../../server/enrollment/tokens.js";
import { asOverTls, makeTestApp, testPublicUrl } from "../helpers/app.js";
import { admin, bootQuery, discoverAndEnroll, enroll, getWith, mac, postJson, serial, tokenFor, type TestApp, uuid } from "./fixtures.js";

/** A booted (discovered) machine and a valid token for it. */
async function setup() {
  const t = makeTestApp();
  await t.app.request(`/boot.ipxe?${bootQuery}`);
  const issued = await tokenFor(t);
  return { t, ...issued };
}

/** Nothing but an audit record: machine still discovered, no token spent, one enroll.refused with `code`. */
function expectOnlyAudited(t: TestApp, code: string) {
  expect(
    t.db
      .select()
      .from(machines)
      .all()
      .map((m) => m.state),
  ).toEqual(["discovered"]);
  expect(t.db.select().from(usedTokens).all()).toHaveLength(0);
  const refused = t.db.select().from(auditEvents).where(eq(auditEvents.action, "enroll.refused")).all();
  expect(refused.map((a) => a.detail?.code)).toEqual([code]);
}

async function expectRefused(res: Response, status: number, error: string) {
  expect(res.status).toBe(status);
  const body = (await res.json()) as { error: string; message: string };
  expect(body.error).toBe(error);
  expect(body.message).toMatch(/\w/);
}

function claimsFor(t: TestApp, over: Record<string, unknown> = {}) {
  const iat = Math.floor(t.clock() / 1000);
  return {
    iss: testPublicUrl,
    aud: "edgejoin:enroll",
    sub: mac,
    cluster: 1,
    jti: "f4b0d7a2-0000-4000-8000-000000000001",
    iat,
    nbf: iat,
    exp: iat + 3600,
    ...over,
  };
}

const b64json = (v: unknown) => base64url.encode(JSON.stringify(v));

describe("bootstrap token attacks on POST /api/v1/enroll", () => {
  it("alg none → 401 token_invalid, only an audit record", async () => {
    const { t } = await setup();
    const forged = `${b64json({ alg: "none", typ: "edgejoin-bootstrap+jwt", kid: t.keyring.active.kid })}.${b64json(claimsFor(t))}.`;
    await expectRefused(await enroll(t, forged), 401, "token_invalid");
    expectOnlyAudited(t, "token_invalid");
  });

  it("HS256 signed with the published public key as secret → 401 token_invalid", async () => {
    const { t } = await setup();
    const jwks = (await (await t.app.request("/.well-known/jwks.json")).json()) as { keys: Array<{ x: string }> };
    for (const secret of [new TextEncoder().encode(jwks.keys[0]!.x), base64url.decode(jwks.keys[0]!.x)]) {
      const forged = await new SignJWT(claimsFor(t))
        .setProtectedHeader({ alg: "HS256", typ: "edgejoin-bootstrap+jwt", kid: t.keyring.active.kid })
        .sign(secret);
      await expectRefused(await enroll(t, forged), 401, "token_invalid");
    }
    expect(t.db.select().from(usedTokens).all()).toHaveLength(0);
  });

  it("foreign Ed25519 key with its own kid → 401 token_unknown_key", async () => {
    const { t } = await setup();
    const foreign = generateKeyPairSync("ed25519").privateKey;
    const forged = await new SignJWT(claimsFor(t)).setProtectedHeader({ alg: "EdDSA", typ: "edgejoin-bootstrap+jwt", kid: "attacker" }).sign(foreign);
    await expectRefused(await enroll(t, forged), 401, "token_unknown_key");
    expectOnlyAudited(t, "token_unknown_key");
  });

  it("foreign Ed25519 key claiming our kid → 401 token_invalid (signature)", async () => {
    const { t } = await setup();
    const foreign = generateKeyPairSync("ed25519").privateKey;
    const forged = await new SignJWT(claimsFor(t)).setProtectedHeader({ alg: "EdDSA", typ: "edgejoin-bootstrap+jwt", kid: t.keyring.active.kid }).sign(foreign);
    await expectRefused(await enroll(t, forged), 401, "token_invalid");
    expectOnlyAudited(t, "token_invalid");
  });

  it("our key but an unknown kid, or none → 401 token_unknown_key", async () => {
    const { t } = await setup();
    const key = t.keyring.active.privateKey;
    const unknown = await new SignJWT(claimsFor(t)).setProtectedHeader({ alg: "EdDSA", typ: "edgejoin-bootstrap+jwt", kid: "k-unknown" }).sign(key);
    await expectRefused(await enroll(t, unknown), 401, "token_unknown_key");
    const none = await new SignJWT(claimsFor(t)).setProtectedHeader({ alg: "EdDSA", typ: "edgejoin-bootstrap+jwt" }).sign(key);
    await expectRefused(await enroll(t, none), 401, "token_unknown_key");
  });

  it("expired token → 401 token_expired; the same token was never spent", async () => {
    const { t, token } = await setup();
    t.clock.advance(t.config.tokenTtlMs + 1000);
    await expectRefused(await enroll(t, token), 401, "token_expired");
    expectOnlyAudited(t, "token_expired");
  });

  it("token not yet valid (nbf in the future) → 401 token_not_yet_valid", async () => {
    const { t } = await setup();
    const { token } = await tokenFor(t);
    t.clock.advance(-60_000);
    await expectRefused(await enroll(t, token), 401, "token_not_yet_valid");
    expectOnlyAudited(t, "token_not_yet_valid");
  });

  it("node credential used to enroll → 401 token_wrong_audience", async () => {
    const { t } = await setup();
    const credential = await issueNodeCredential(t.keyring, { issuer: testPublicUrl, machineId: 1, generation: 0, now: t.clock(), ttlMs: 60_000 });
    await expectRefused(await enroll(t, credential), 401, "token_wrong_audience");
    expectOnlyAudited(t, "token_wrong_audience");
  });

  it("right typ but wrong audience → 401 token_wrong_audience", async () => {
    const { t } = await setup();
    const forged = await new SignJWT(claimsFor(t, { aud: "edgejoin:node" }))
      .setProtectedHeader({ alg: "EdDSA", typ: "edgejoin-bootstrap+jwt", kid: t.keyring.active.kid })
      .sign(t.keyring.active.privateKey);
    await expectRefused(await enroll(t, forged), 401, "token_wrong_audience");
  });

  it("our key and typ but no exp or no jti → 401 token_invalid", async () => {
    const { t } = await setup();
    for (const drop of ["exp", "jti"]) {
      const claims: Record<string, unknown> = claimsFor(t);
      delete claims[drop];
      const forged = await new SignJWT(claims)
        .setProtectedHeader({ alg: "EdDSA", typ: "edgejoin-bootstrap+jwt", kid: t.keyring.active.kid })
        .sign(t.keyring.active.privateKey);
      const body = await (async () => {
        const res = await enroll(t, forged);
        expect(res.status).toBe(401);
        return (await res.json()) as { error: string; message: string };
      })();
      expect(body).toMatchObject({ error: "token_invalid" });
      expect(body.message).toContain(drop);
    }
    expect(t.db.select().from(usedTokens).all()).toHaveLength(0);
  });

  it("another server's issuer → 401 token_invalid", async () => {
    const { t } = await setup();
    const forged = await new SignJWT(claimsFor(t, { iss: "http://10.99.0.1:8080" }))
      .setProtectedHeader({ alg: "EdDSA", typ: "edgejoin-bootstrap+jwt", kid: t.keyring.active.kid })
      .sign(t.keyring.active.privateKey);
    await expectRefused(await enroll(t, forged), 401, "token_invalid");
  });

  it("tampered payload (MAC swapped, signature kept) → 401 token_invalid", async () => {
    const { t, token } = await setup();
    const [h, p, s] = token.split(".");
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(p!))) as Record<string, unknown>;
    const tampered = `${h}.${b64json({ ...payload, sub: "52:54:00:99:99:99" })}.${s}`;
    await expectRefused(await enroll(t, tampered, { mac: "52:54:00:99:99:99" }), 401, "token_invalid");
    expect(t.db.select().from(machines).all()).toHaveLength(1);
    expect(t.db.select().from(usedTokens).all()).toHaveLength(0);
  });

  it("replayed token → 409 token_replayed, machine unchanged, replay audited", async () => {
    const { t, token } = await setup();
    expect((await enroll(t, token)).status).toBe(201);
    const before = t.db.select().from(machines).get();
    t.clock.advance(1000);
    await expectRefused(await enroll(t, token), 409, "token_replayed");
    expect(t.db.select().from(machines).get()).toEqual(before);
    const refused = t.db.select().from(auditEvents).where(eq(auditEvents.action, "enroll.refused")).all();
    expect(refused.map((a) => a.detail?.code)).toEqual(["token_replayed"]);
  });

  it("the same token sent 20 times at once → exactly one 201, the rest 409 token_replayed", async () => {
    const { t, token } = await setup();
    const answers = await Promise.all(Array.from({ length: 20 }, () => enroll(t, token)));
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([201, ...Array(19).fill(409)]);
    expect(t.db.select().from(usedTokens).all()).toHaveLength(1);
    expect(t.db.select().from(machines).all()).toHaveLength(1);
  });

  it("token for another MAC → 403 mac_mismatch, and the token still works for its own MAC", async () => {
    const { t, token } = await setup();
    await expectRefused(await enroll(t, token, { mac: "52:54:00:aa:bb:cc" }), 403, "mac_mismatch");
    expect(t.db.select().from(machines).all()).toHaveLength(1);
    expect(t.db.select().from(usedTokens).all()).toHaveLength(0);
    expect((await enroll(t, token)).status).toBe(201);
  });

  it("token for another cluster → 403 cluster_mismatch, token not spent", async () => {
    const { t } = await setup();
    const now = t.clock();
    const other = t.db
      .insert(clusters)
      .values({
        name: "lab",
        k3sVersion: "v1.31.4+k3s1",
        installer: { kind: "cloud-image", kernel_url: "k", initrd_urls: [], kernel_args: "", iso_url: null },
        serverToken: "s",
        agentToken: "a",
        createdAt: now,
        updatedAt: now,
      })
      .returning()
      .get();
    const { token } = await tokenFor(t, mac, other.id);
    await expectRefused(await enroll(t, token), 403, "cluster_mismatch");
    expect(t.db.select().from(usedTokens).all()).toHaveLength(0);
    expect(t.db.select().from(machines).get()).toMatchObject({ state: "discovered", clusterId: 1 });
  });

  it("token for a cluster that no longer exists → 403 cluster_mismatch, nothing created", async () => {
    const t = makeTestApp();
    const { token } = await tokenFor(t, mac, 99);
    await expectRefused(await enroll(t, token), 403, "cluster_mismatch");
    expect(t.db.select().from(machines).all()).toHaveLength(0);
  });

  it("a machine enrolled before, same MAC with another SMBIOS UUID or serial → 409 identity_conflict, audited, visible to admins, token kept", async () => {
    const { t } = await setup();
    const first = await enroll(t, (await tokenFor(t)).token);
    expect(first.status).toBe(201);
    t.db.update(machines).set({ state: "failed" }).run();
    t.db.delete(usedTokens).run();
    const { token } = await tokenFor(t);
    await expectRefused(await enroll(t, token, { uuid: "11111111-2222-4333-8444-555555555555" }), 409, "identity_conflict");
    await expectRefused(await enroll(t, token, { serial: "OTHER-SERIAL" }), 409, "identity_conflict");
    expect(t.db.select().from(machines).get()).toMatchObject({ state: "failed" });
    expect(t.db.select().from(usedTokens).all()).toHaveLength(0);
    const id = t.db.select().from(machines).get()!.id;
    const res = await t.app.request(`/api/v1/nodes/${id}/events`, { headers: admin });
    const body = (await res.json()) as { audit: Array<{ action: string; detail: Record<string, unknown> }> };
    const conflicts = body.audit.filter((a) => a.action === "enroll.identity_conflict");
    expect(conflicts).toHaveLength(2);
    expect(conflicts.map((c) => Object.keys(c.detail).filter((k) => k === "uuid" || k === "serial"))).toEqual([["serial"], ["uuid"]]);
  });

  it("tokens and credentials never reach the log or the audit trail", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const base = makeTestApp();
    const deps = makeDeps({
      db: base.db,
      config: base.config,
      clock: base.clock,
      keyring: base.keyring,
      caCertPem: base.deps.caCertPem,
      logger: pino({ level: "trace" }, sink),
    });
    const t = { ...base, app: asOverTls(createApp(deps)) };
    await t.app.request(`/boot.ipxe?${bootQuery}`);
    const { token } = await tokenFor(t);
    const res = await enroll(t, token);
    const { credential } = (await res.json()) as { credential: string };
    await getWith(t, "/api/v1/node/config", credential);
    await enroll(t, token);
    const everything = lines.join("") + JSON.stringify(t.db.select().from(auditEvents).all());
    expect(lines.length).toBeGreaterThan(2);
    expect(everything).not.toContain(token.split(".")[2]);
    expect(everything).not.toContain(credential.split(".")[2]);
  });
});

describe("node credential attacks", () => {
  it("bootstrap token used as a node credential → 401 token_wrong_audience", async () => {
    const { t, token } = await setup();
    await expectRefused(await getWith(t, "/api/v1/node/config", token), 401, "token_wrong_audience");
  });

  it("no or malformed Authorization → 401 unauthorized", async () => {
    const t = makeTestApp();
    await expectRefused(await t.app.request("/api/v1/node/config"), 401, "unauthorized");
    await expectRefused(await t.app.request("/api/v1/node/config", { headers: { authorization: "Basic abc" } }), 401, "unauthorized");
    await expectRefused(await getWith(t, "/api/v1/node/config", "not.a.jwt"), 401, "token_invalid");
  });

  it("credential generation behind the machine's → 401 credential_revoked", async () => {
    const t = makeTestApp();
    const { node_id, credential } = await discoverAndEnroll(t);
    t.db.update(machines).set({ credentialGeneration: 1 }).where(eq(machines.id, node_id)).run();
    await expectRefused(await getWith(t, "/api/v1/node/config", credential), 401, "credential_revoked");
    await expectRefused(await postJson(t, "/api/v1/node/events", { type: "ready" }, { authorization: `Bearer ${credential}` }), 401, "credential_revoked");
  });

  it("expired credential → 401 token_expired", async () => {
    const t = makeTestApp();
    const { credential } = await discoverAndEnroll(t);
    t.clock.advance(t.config.credentialTtlMs + 1000);
    await expectRefused(await getWith(t, "/api/v1/node/config", credential), 401, "token_expired");
  });

  it("credential from another edgejoin's keys → 401 token_unknown_key", async () => {
    const other = makeTestApp();
    const { credential } = await discoverAndEnroll(other);
    const t = makeTestApp();
    await discoverAndEnroll(t);
    await expectRefused(await getWith(t, "/api/v1/node/config", credential), 401, "token_unknown_key");
  });

  it("rejected machine → its credential died with the decision: config and events 401 credential_revoked, so the agent stops", async () => {
    const t = makeTestApp();
    const { node_id, credential } = await discoverAndEnroll(t);
    expect((await postJson(t, `/api/v1/nodes/${node_id}/reject`, { reason: "not ours" }, admin)).status).toBe(200);
    await expectRefused(await getWith(t, "/api/v1/node/config", credential), 401, "credential_revoked");
    await expectRefused(await postJson(t, "/api/v1/node/events", { type: "installing" }, { authorization: `Bearer ${credential}` }), 401, "credential_revoked");
  });

  it("a machine never enrolled, sighted with another UUID (a neighbour's boot first) → the enroll's own identity wins, no lock-out", async () => {
    const t = makeTestApp();
    await t.app.request("/boot.ipxe?mac=52:54:00:12:34:56&uuid=11111111-2222-4333-8444-555555555555&serial=FAKE");
    expect((await enroll(t, (await tokenFor(t)).token)).status).toBe(201);
    expect(t.db.select().from(machines).get()).toMatchObject({ uuid, serial, state: "pending" });
  });

  it("retired machine → 403 machine_retired", async () => {
    const t = makeTestApp();
    const { node_id, credential } = await discoverAndEnroll(t);
    t.db.update(machines).set({ state: "retired" }).where(eq(machines.id, node_id)).run();
    await expectRefused(await getWith(t, "/api/v1/node/config", credential), 403, "machine_retired");
  });
});

describe("admin token", () => {
  it("admin routes without, with a wrong, or with a node credential as token → 401 unauthorized", async () => {
    const t = makeTestApp();
    const { node_id, credential } = await discoverAndEnroll(t);
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: "Bearer wrong-token-wrong-token-wrong" },
      { authorization: `Bearer ${credential}` },
      { authorization: "Bearer" },
    ];
    for (const headers of attempts) {
      const res = await t.app.request("/api/v1/nodes", { headers });
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="edgejoin admin"');
      await expectRefused(res, 401, "unauthorized");
      await expectRefused(await postJson(t, `/api/v1/nodes/${node_id}/approve`, {}, headers), 401, "unauthorized");
    }
    expect(t.db.select().from(machines).get()!.state).toBe("pending");
  });

  it("no admin token configured at all → every admin request 401", async () => {
    const base = makeTestApp();
    const deps = makeDeps({ db: base.db, config: { ...base.config, adminToken: undefined }, clock: base.clock, caCertPem: base.deps.caCertPem });
    const app = createApp(deps);
    await expectRefused(await app.request("/api/v1/nodes", { headers: { authorization: "Bearer " } }), 401, "unauthorized");
    await expectRefused(await app.request("/api/v1/nodes", { headers: { authorization: "Bearer anything-at-all-anything" } }), 401, "unauthorized");
  });

  it("/.well-known/jwks.json → public, Ed25519 public keys only", async () => {
    const t = makeTestApp();
    const res = await t.app.request("/.well-known/jwks.json");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { keys: Array<Record<string, unknown>> };
    expect(body.keys).toEqual([{ kty: "OKP", crv: "Ed25519", x: t.keyring.active.publicJwk.x, kid: t.keyring.active.kid, alg: "EdDSA", use: "sig" }]);
    expect(JSON.stringify(body)).not.toContain('"d"');
  });
});
