/**
 * Node routes need `Authorization: Bearer <node credential>`: a JWT from enroll whose `gen` is
 * still the machine's credential generation. Puts the machine and the presented generation in
 * the context; the store checks the generation again inside the transaction that applies the
 * request, so a decision that lands while a body is in flight wins.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../context.js";
import { verifyNodeCredential } from "../../enrollment/tokens.js";
import { ApiError } from "../../errors.js";
import { getMachine } from "../../store/machines.js";
import { isSeatTakeBackCredential } from "../../store/quorum.js";

/** Verify the node credential and set `machine`; 401 with a token_* or credential_revoked code otherwise. */
export const nodeAuth = createMiddleware<AppEnv>(async (c, next) => {
  const match = /^Bearer\s+(\S{1,4096})\s*$/i.exec(c.req.header("authorization") ?? "");
  if (!match) throw new ApiError("unauthorized", "this needs the node credential from enroll: send Authorization: Bearer <credential>");
  const { keyring, config, clock, db } = c.var.deps;
  const claims = await verifyNodeCredential(keyring, match[1]!, { issuer: config.publicUrl, now: clock() });
  const machine = getMachine(db, claims.machineId);
  if (!machine) throw new ApiError("credential_revoked", "the machine this credential was issued to no longer exists; enroll again");
  // Bumping the generation (reject, retire, reinstall, seat taken back, a new enrollment) revokes
  // every credential issued before. The one let through to the store is the credential a lease
  // take-back revoked: its late k3s report must still raise the split-brain alarm there.
  if (claims.generation !== machine.credentialGeneration && !isSeatTakeBackCredential(machine, claims.generation)) {
    throw new ApiError("credential_revoked", "this node credential was revoked; enroll again with a fresh bootstrap token");
  }
  c.set("machine", machine);
  c.set("credentialGeneration", claims.generation);
  await next();
});
