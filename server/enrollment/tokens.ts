/**
 * Bootstrap tokens (user-data → enroll) and node credentials (enroll → config/events): EdDSA JWTs
 * signed by the keyring's active key. Verification pins the algorithm, issuer, audience, `typ`
 * and expiry, and accepts only a `kid` the keyring holds. Each refusal is an ApiError with a
 * stable code; messages never quote the token.
 */
import { randomUUID } from "node:crypto";
import { errors, jwtVerify, SignJWT, type JWTPayload } from "jose";
import { z } from "zod";
import { ApiError } from "../errors.js";
import { parseMac } from "../identity.js";
import type { Keyring } from "./keyring.js";

/** `aud` of a bootstrap token: it only lets a machine enroll. */
export const bootstrapAudience = "edgejoin:enroll";
/** `aud` of a node credential: it only lets an enrolled machine fetch config and report. */
export const nodeAudience = "edgejoin:node";
/** `typ` headers keep the two kinds apart even if an audience check were ever loosened. */
export const bootstrapType = "edgejoin-bootstrap+jwt";
export const nodeCredentialType = "edgejoin-node+jwt";

/** Far longer than any token we issue (~400 bytes); a cap before any parsing happens. */
const maxTokenLength = 4096;

/** What a verified bootstrap token says. */
export type BootstrapClaims = { mac: string; clusterId: number; jti: string; expiresAt: number; kid: string };
/** What a verified node credential says. */
export type NodeCredentialClaims = { machineId: number; generation: number; kid: string };

const seconds = (ms: number) => Math.floor(ms / 1000);

async function sign(
  keyring: Keyring,
  claims: JWTPayload,
  o: { typ: string; audience: string; issuer: string; subject: string; now: number; ttlMs: number },
): Promise<string> {
  const key = keyring.active;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "EdDSA", kid: key.kid, typ: o.typ })
    .setIssuer(o.issuer)
    .setAudience(o.audience)
    .setSubject(o.subject)
    .setIssuedAt(seconds(o.now))
    .setNotBefore(seconds(o.now))
    .setExpirationTime(seconds(o.now + o.ttlMs))
    .sign(key.privateKey);
}

/** Sign a bootstrap token for one machine (by MAC) in one cluster; issued when user-data renders. */
export async function issueBootstrapToken(
  keyring: Keyring,
  o: { issuer: string; mac: string; clusterId: number; now: number; ttlMs: number },
): Promise<{ token: string; jti: string; expiresAt: number }> {
  const jti = randomUUID();
  const token = await sign(
    keyring,
    { cluster: o.clusterId, jti },
    {
      typ: bootstrapType,
      audience: bootstrapAudience,
      issuer: o.issuer,
      subject: o.mac,
      now: o.now,
      ttlMs: o.ttlMs,
    },
  );
  return { token, jti, expiresAt: seconds(o.now + o.ttlMs) * 1000 };
}

/** Sign a node credential for machine `machineId` at its current credential generation. */
export async function issueNodeCredential(
  keyring: Keyring,
  o: { issuer: string; machineId: number; generation: number; now: number; ttlMs: number },
): Promise<string> {
  return sign(
    keyring,
    { gen: o.generation, jti: randomUUID() },
    {
      typ: nodeCredentialType,
      audience: nodeAudience,
      issuer: o.issuer,
      subject: String(o.machineId),
      now: o.now,
      ttlMs: o.ttlMs,
    },
  );
}

/** Turn whatever jose throws into our stable codes; ApiErrors from the key lookup pass through. */
function refusal(err: unknown, what: string): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof errors.JWTExpired) return new ApiError("token_expired", `the ${what} has expired`);
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === "missing") return new ApiError("token_invalid", `the ${what} lacks its ${err.claim} claim`);
    if (err.claim === "nbf" || err.claim === "iat") return new ApiError("token_not_yet_valid", `the ${what} is not valid yet`);
    if (err.claim === "aud" || err.claim === "typ") return new ApiError("token_wrong_audience", `this token is not a ${what}`);
    if (err.claim === "iss") return new ApiError("token_invalid", `the ${what} was issued by another server`);
    return new ApiError("token_invalid", `the ${what} lacks a valid ${err.claim} claim`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return new ApiError("token_invalid", `the ${what} uses an algorithm edgejoin does not accept (only EdDSA)`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return new ApiError("token_invalid", `the ${what}'s signature does not verify`);
  return new ApiError("token_invalid", `the ${what} is not a well-formed signed JWT`);
}

async function verify(keyring: Keyring, token: string, o: { issuer: string; now: number; audience: string; typ: string; what: string }) {
  if (typeof token !== "string" || token.length === 0 || token.length > maxTokenLength) {
    throw new ApiError("token_invalid", `the ${o.what} is not a well-formed signed JWT`);
  }
  try {
    return await jwtVerify(
      token,
      (header) => {
        // Only keys we hold: a token naming a kid we never had (or pruned) is refused before any crypto.
        if (typeof header.kid !== "string") throw new ApiError("token_unknown_key", `the ${o.what} names no signing key (kid)`);
        const key = keyring.verificationKey(header.kid);
        if (!key) throw new ApiError("token_unknown_key", `the ${o.what} was signed by a key edgejoin does not know`);
        return key.publicKey;
      },
      {
        algorithms: ["EdDSA"],
        issuer: o.issuer,
        audience: o.audience,
        typ: o.typ,
        currentDate: new Date(o.now),
        requiredClaims: ["exp", "iat", "nbf", "jti", "sub"],
      },
    );
  } catch (err) {
    throw refusal(err, o.what);
  }
}

const bootstrapClaims = z.object({
  sub: z.string().refine((s) => parseMac(s) === s, "sub must be a canonical MAC"),
  cluster: z.number().int().positive(),
  jti: z.string().min(1).max(64),
  exp: z.number().int(),
});

/** Verify a bootstrap token; throws ApiError (token_*) when it must not be accepted. */
export async function verifyBootstrapToken(keyring: Keyring, token: string, o: { issuer: string; now: number }): Promise<BootstrapClaims> {
  const what = "bootstrap token";
  const { payload, protectedHeader } = await verify(keyring, token, { ...o, audience: bootstrapAudience, typ: bootstrapType, what });
  const claims = bootstrapClaims.safeParse(payload);
  if (!claims.success) throw new ApiError("token_invalid", `the ${what}'s claims are not the ones edgejoin issues`);
  const c = claims.data;
  return { mac: c.sub, clusterId: c.cluster, jti: c.jti, expiresAt: c.exp * 1000, kid: protectedHeader.kid! };
}

const nodeClaims = z.object({
  sub: z.string().regex(/^[1-9]\d{0,14}$/, "sub must be a machine id"),
  gen: z.number().int().nonnegative(),
});

/** Verify a node credential; throws ApiError (token_*) when it must not be accepted. */
export async function verifyNodeCredential(keyring: Keyring, token: string, o: { issuer: string; now: number }): Promise<NodeCredentialClaims> {
  const what = "node credential";
  const { payload, protectedHeader } = await verify(keyring, token, { ...o, audience: nodeAudience, typ: nodeCredentialType, what });
  const claims = nodeClaims.safeParse(payload);
  if (!claims.success) throw new ApiError("token_invalid", `the ${what}'s claims are not the ones edgejoin issues`);
  return { machineId: Number(claims.data.sub), generation: claims.data.gen, kid: protectedHeader.kid! };
}
