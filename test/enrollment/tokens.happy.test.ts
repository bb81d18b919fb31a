import { describe, expect, it } from "vitest";
import { decodeProtectedHeader, decodeJwt } from "jose";
import { Keyring, generateSigningKey } from "../../server/enrollment/keyring.js";
import { issueBootstrapToken, issueNodeCredential, verifyBootstrapToken, verifyNodeCredential } from "../../server/enrollment/tokens.js";

const issuer = "http://10.77.0.1:8080";
const now = Date.UTC(2026, 10, 25, 12, 0, 0);
const mac = "52:54:00:12:34:56";

describe("bootstrap tokens", () => {
  it("issued token → EdDSA header with kid and typ, claims bound to MAC and cluster", async () => {
    const keyring = Keyring.generate(now);
    const { token, jti, expiresAt } = await issueBootstrapToken(keyring, { issuer, mac, clusterId: 3, now, ttlMs: 86_400_000 });
    expect(decodeProtectedHeader(token)).toEqual({ alg: "EdDSA", kid: keyring.active.kid, typ: "edgejoin-bootstrap+jwt" });
    const payload = decodeJwt(token);
    expect(payload).toMatchObject({ iss: issuer, aud: "edgejoin:enroll", sub: mac, cluster: 3, jti });
    expect(payload.exp! * 1000).toBe(now + 86_400_000);
    expect(expiresAt).toBe(now + 86_400_000);
    const claims = await verifyBootstrapToken(keyring, token, { issuer, now: now + 1000 });
    expect(claims).toEqual({ mac, clusterId: 3, jti, expiresAt, kid: keyring.active.kid });
  });

  it("key rotated after issue → old token still verifies, new tokens carry the new kid", async () => {
    const keyring = Keyring.generate(now);
    const oldKid = keyring.active.kid;
    const { token } = await issueBootstrapToken(keyring, { issuer, mac, clusterId: 1, now, ttlMs: 3_600_000 });
    keyring.activate(generateSigningKey(now + 10).key, now + 10);
    expect(keyring.active.kid).not.toBe(oldKid);
    await expect(verifyBootstrapToken(keyring, token, { issuer, now: now + 20 })).resolves.toMatchObject({ kid: oldKid });
    const fresh = await issueBootstrapToken(keyring, { issuer, mac, clusterId: 1, now: now + 30, ttlMs: 3_600_000 });
    expect(decodeProtectedHeader(fresh.token).kid).toBe(keyring.active.kid);
    expect(keyring.jwks().keys.map((k) => k.kid)).toEqual([keyring.active.kid, oldKid]);
  });

  it("retired key past every token's lifetime → pruned from the ring", () => {
    const keyring = Keyring.generate(now);
    const oldKid = keyring.active.kid;
    keyring.activate(generateSigningKey(now).key, now);
    expect(keyring.prune(now + 1000, 1000)).toEqual([]);
    expect(keyring.prune(now + 1001, 1000)).toEqual([oldKid]);
    expect(keyring.verificationKey(oldKid)).toBeUndefined();
  });
});

describe("node credentials", () => {
  it("issued credential → verifies to machine id and generation", async () => {
    const keyring = Keyring.generate(now);
    const credential = await issueNodeCredential(keyring, { issuer, machineId: 42, generation: 2, now, ttlMs: 60_000 });
    expect(decodeProtectedHeader(credential).typ).toBe("edgejoin-node+jwt");
    expect(decodeJwt(credential)).toMatchObject({ aud: "edgejoin:node", sub: "42", gen: 2 });
    await expect(verifyNodeCredential(keyring, credential, { issuer, now })).resolves.toEqual({ machineId: 42, generation: 2, kid: keyring.active.kid });
  });
});
