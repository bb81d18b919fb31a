/**
 * The Ed25519 keys edgejoin signs bootstrap tokens and node credentials with: one active key
 * that signs, plus the retired keys whose public halves still verify tokens issued before a
 * rotation. In memory only; `server/store/keys.ts` persists it. Pure: node:crypto, no framework.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";

/** A public key as published in `/.well-known/jwks.json`. */
export type PublicSigningJwk = { kty: "OKP"; crv: "Ed25519"; x: string; kid: string; alg: "EdDSA"; use: "sig" };

/** The private half, as kept in the data folder (never in the database, never logged). */
export type PrivateSigningJwk = { kty: "OKP"; crv: "Ed25519"; x: string; d: string; kid: string };

/** A key that can verify: every key in the ring, active or retired. */
export type VerificationKey = {
  kid: string;
  publicKey: KeyObject;
  publicJwk: PublicSigningJwk;
  createdAt: number;
  /** When a newer key took over signing; null for the active key. */
  retiredAt: number | null;
};

/** The one key that signs new tokens. */
export type ActiveKey = VerificationKey & { privateKey: KeyObject };

const base64url = /^[A-Za-z0-9_-]{43}$/;

/** RFC 7638 JWK thumbprint of an Ed25519 public key: a kid anyone can recompute from the key. */
export function ed25519Thumbprint(x: string): string {
  // Members in lexicographic order, no whitespace: the RFC's canonical form.
  return createHash("sha256").update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest("base64url");
}

function publicJwkOf(x: string, kid: string): PublicSigningJwk {
  return { kty: "OKP", crv: "Ed25519", x, kid, alg: "EdDSA", use: "sig" };
}

/** A fresh signing key and the private JWK to persist for it. */
export function generateSigningKey(now: number): { key: ActiveKey; privateJwk: PrivateSigningJwk } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const x = String(jwk.x);
  const kid = ed25519Thumbprint(x);
  return {
    key: { kid, privateKey, publicKey, publicJwk: publicJwkOf(x, kid), createdAt: now, retiredAt: null },
    privateJwk: { kty: "OKP", crv: "Ed25519", x, d: String(jwk.d), kid },
  };
}

/** Rebuild the active key from its stored private JWK; throws if the file is not what we wrote. */
export function activeKeyFromJwk(jwk: unknown, createdAt: number): ActiveKey {
  const j = jwk as Partial<PrivateSigningJwk> | null;
  if (j?.kty !== "OKP" || j.crv !== "Ed25519" || !base64url.test(j.x ?? "") || !base64url.test(j.d ?? "")) {
    throw new Error("not an Ed25519 private JWK");
  }
  const x = j.x!;
  const kid = ed25519Thumbprint(x);
  if (j.kid !== kid) throw new Error(`kid ${String(j.kid)} does not match the key's thumbprint`);
  const privateKey = createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", x, d: j.d! }, format: "jwk" });
  const publicKey = createPublicKey(privateKey);
  if (publicKey.export({ format: "jwk" }).x !== x) throw new Error("private key does not match its public half");
  return { kid, privateKey, publicKey, publicJwk: publicJwkOf(x, kid), createdAt, retiredAt: null };
}

/** Rebuild a verification-only key from a published public JWK. */
export function verificationKeyFromJwk(jwk: unknown, createdAt: number, retiredAt: number | null): VerificationKey {
  const j = jwk as Partial<PublicSigningJwk> | null;
  if (j?.kty !== "OKP" || j.crv !== "Ed25519" || !base64url.test(j.x ?? "")) throw new Error("not an Ed25519 public JWK");
  const kid = ed25519Thumbprint(j.x!);
  if (j.kid !== kid) throw new Error(`kid ${String(j.kid)} does not match the key's thumbprint`);
  const publicKey = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: j.x! }, format: "jwk" });
  return { kid, publicKey, publicJwk: publicJwkOf(j.x!, kid), createdAt, retiredAt };
}

/** The active signing key plus every retired key still needed to verify tokens in circulation. */
export class Keyring {
  #active: ActiveKey;
  readonly #byKid = new Map<string, VerificationKey>();

  constructor(active: ActiveKey, retired: Iterable<VerificationKey> = []) {
    this.#active = active;
    for (const k of retired) this.#byKid.set(k.kid, k);
    this.#byKid.set(active.kid, active);
  }

  /** A ring with one freshly generated key: what tests and a first start use. */
  static generate(now: number): Keyring {
    return new Keyring(generateSigningKey(now).key);
  }

  /** The key new tokens are signed with. */
  get active(): ActiveKey {
    return this.#active;
  }

  /** The public key for `kid`, or undefined when the ring does not (or no longer) hold it. */
  verificationKey(kid: string): VerificationKey | undefined {
    return this.#byKid.get(kid);
  }

  /** Every key, active first, then newest retired first. */
  keys(): VerificationKey[] {
    const retired = [...this.#byKid.values()].filter((k) => k.kid !== this.#active.kid);
    retired.sort((a, b) => (b.retiredAt ?? 0) - (a.retiredAt ?? 0));
    return [this.#active, ...retired];
  }

  /** The JWK set `/.well-known/jwks.json` publishes. */
  jwks(): { keys: PublicSigningJwk[] } {
    return { keys: this.keys().map((k) => k.publicJwk) };
  }

  /** Make `next` the signing key; the previous one keeps verifying. Returns the retired key. */
  activate(next: ActiveKey, now: number): VerificationKey {
    const previous = this.#active;
    const retired: VerificationKey = {
      kid: previous.kid,
      publicKey: previous.publicKey,
      publicJwk: previous.publicJwk,
      createdAt: previous.createdAt,
      retiredAt: now,
    };
    this.#byKid.set(retired.kid, retired);
    this.#active = { ...next, retiredAt: null };
    this.#byKid.set(next.kid, this.#active);
    return retired;
  }

  /**
   * Drop retired keys whose every token has expired: a key retired at R signed its last token at
   * R, and no token lives longer than `maxTokenLifetimeMs`. Returns the kids dropped.
   */
  prune(now: number, maxTokenLifetimeMs: number): string[] {
    const dropped: string[] = [];
    for (const k of this.#byKid.values()) {
      if (k.retiredAt !== null && k.retiredAt + maxTokenLifetimeMs < now) {
        this.#byKid.delete(k.kid);
        dropped.push(k.kid);
      }
    }
    return dropped;
  }
}
