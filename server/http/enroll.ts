/** `POST /api/v1/enroll`: a bootstrap token and the machine's facts → a node credential. */
import { Hono } from "hono";
import type { AppEnv } from "../context.js";
import { enrollRequest } from "../enrollment/enroll.js";
import { type BootstrapClaims, issueNodeCredential, verifyBootstrapToken } from "../enrollment/tokens.js";
import { ApiError } from "../errors.js";
import { enrollMachine, recordEnrollRefusal } from "../store/enrollment.js";
import { limitJsonBody, validate } from "./middleware/validate.js";

export const enrollRoutes = new Hono<AppEnv>().post("/api/v1/enroll", limitJsonBody, validate("json", enrollRequest), async (c) => {
  const request = c.req.valid("json");
  const { db, keyring, config, clock, logger } = c.var.deps;
  const sourceIp = c.var.sourceIp;
  let claims: BootstrapClaims;
  try {
    claims = await verifyBootstrapToken(keyring, request.token, { issuer: config.publicUrl, now: clock() });
  } catch (err) {
    if (err instanceof ApiError) {
      recordEnrollRefusal(db, { code: err.code, mac: request.mac, sourceIp, now: clock(), mayAudit: (id) => c.var.deps.limits.mayAuditRefusal(sourceIp, id) });
      logger.warn({ mac: request.mac, sourceIp, error: err.code }, "enroll refused");
    }
    throw err;
  }
  let enrolled: ReturnType<typeof enrollMachine>;
  try {
    // A refused enroll is audited within bounds (per source, per machine, in total); a second enroll
    // of a machine enrolled in this install is a conflict the admin sees on the machine.
    enrolled = enrollMachine(db, { claims, request, sourceIp, now: clock(), mayAudit: (id) => c.var.deps.limits.mayAuditRefusal(sourceIp, id) });
  } catch (err) {
    if (err instanceof ApiError) logger.warn({ mac: request.mac, sourceIp, error: err.code }, "enroll refused");
    throw err;
  }
  const { machine, created } = enrolled;
  const credential = await issueNodeCredential(keyring, {
    issuer: config.publicUrl,
    machineId: machine.id,
    generation: machine.credentialGeneration,
    now: clock(),
    ttlMs: config.credentialTtlMs,
  });
  logger.info({ machineId: machine.id, mac: machine.mac, state: machine.state, created }, "machine enrolled");
  return c.json({ node_id: machine.id, state: machine.state, credential }, 201);
});
