/**
 * Enrolling with a bootstrap token: spend its `jti` and create or update the machine, in one
 * transaction. A refused attempt writes only its audit record and never spends the token.
 */
import { eq, lt } from "drizzle-orm";
import type { Db, Queryable } from "../../db/client.js";
import { machines, usedTokens, type MachineRow } from "../../db/schema.js";
import { decideEnrollment, meaningfulSerial, meaningfulUuid, type EnrollRequest } from "../enrollment/enroll.js";
import type { BootstrapClaims } from "../enrollment/tokens.js";
import { refuse, type ErrorCode } from "../errors.js";
import { recordAudit } from "./audit.js";
import { getCluster } from "./clusters.js";
import { getMachineByMac } from "./machines.js";
import { transact } from "./transaction.js";

/**
 * Seam for pre-registration and auto-approve policies (`POST /api/v1/machines`): when one matches
 * the enrolling machine, enroll lands it in `approved` instead of `pending`. None exist yet.
 */
function matchesPreRegistration(_tx: Queryable, _machine: { mac: string; uuid?: string | undefined; serial?: string | undefined }): boolean {
  return false;
}

/** Enroll with a verified bootstrap token; a replayed `jti` is refused. */
export function enrollMachine(
  db: Db,
  o: { claims: BootstrapClaims; request: EnrollRequest; sourceIp: string; now: number },
): { machine: MachineRow; created: boolean } {
  const { claims, request, now } = o;
  return transact(db, (tx) => {
    const existing = getMachineByMac(tx, request.mac);
    const refused = (code: ErrorCode, message: string, detail: Record<string, unknown>) => {
      recordAudit(tx, {
        at: now,
        actor: "anonymous",
        sourceIp: o.sourceIp || null,
        action: code === "identity_conflict" ? "enroll.identity_conflict" : "enroll.refused",
        machineId: existing?.id ?? null,
        clusterId: existing?.clusterId ?? claims.clusterId,
        detail: { code, mac: request.mac, jti: claims.jti, kid: claims.kid, ...detail },
      });
      return refuse(code, message);
    };

    if (tx.select({ jti: usedTokens.jti }).from(usedTokens).where(eq(usedTokens.jti, claims.jti)).get()) {
      return refused("token_replayed", "this bootstrap token was already used; fetch user-data again for a fresh one", {});
    }
    const decision = decideEnrollment({
      claims,
      request,
      machine: existing,
      tokenClusterExists: getCluster(tx, claims.clusterId) !== undefined,
      preApproved: matchesPreRegistration(tx, request),
    });
    if (decision.kind === "refuse") return refused(decision.refusal.code, decision.refusal.message, decision.refusal.detail);

    const facts = {
      ...(request.facts ?? {}),
      ...(request.hostname ? { hostname: request.hostname } : {}),
      ...(request.ip ? { ip: request.ip } : {}),
    };
    const uuid = meaningfulUuid(request.uuid);
    const serial = meaningfulSerial(request.serial);
    const machine = existing
      ? tx
          .update(machines)
          .set({
            // Fill what boot did not tell us; never overwrite a known identity (a conflict was refused above).
            uuid: meaningfulUuid(existing.uuid) ? existing.uuid : (uuid ?? existing.uuid),
            serial: meaningfulSerial(existing.serial) ? existing.serial : (serial ?? existing.serial),
            manufacturer: existing.manufacturer ?? request.facts?.manufacturer ?? null,
            product: existing.product ?? request.facts?.product ?? null,
            arch: request.arch || existing.arch,
            clusterId: decision.clusterId,
            facts,
            lastIp: o.sourceIp || existing.lastIp,
            lastSeenAt: now,
            ...(decision.stateChanged ? { state: decision.nextState, stateChangedAt: now } : {}),
            ...(decision.revokeCredentials ? { credentialGeneration: existing.credentialGeneration + 1 } : {}),
          })
          .where(eq(machines.id, existing.id))
          .returning()
          .get()
      : tx
          .insert(machines)
          .values({
            mac: request.mac,
            uuid: uuid ?? null,
            serial: serial ?? null,
            manufacturer: request.facts?.manufacturer ?? null,
            product: request.facts?.product ?? null,
            arch: request.arch || null,
            clusterId: decision.clusterId,
            facts,
            lastIp: o.sourceIp || null,
            state: decision.nextState,
            firstSeenAt: now,
            lastSeenAt: now,
            stateChangedAt: now,
          })
          .returning()
          .get();
    // Spent tokens past their expiry can go: verification refuses them anyway.
    tx.delete(usedTokens).where(lt(usedTokens.expiresAt, now)).run();
    tx.insert(usedTokens).values({ jti: claims.jti, machineId: machine.id, usedAt: now, expiresAt: claims.expiresAt }).run();
    recordAudit(tx, {
      at: now,
      actor: `machine:${machine.id}`,
      sourceIp: o.sourceIp || null,
      action: "machine.enrolled",
      machineId: machine.id,
      clusterId: machine.clusterId,
      detail: {
        from: existing?.state ?? null,
        to: machine.state,
        created: !existing,
        ...(decision.revokeCredentials ? { reenrolled: true, earlier_credentials_revoked: true } : {}),
        jti: claims.jti,
        kid: claims.kid,
      },
    });
    return { machine, created: !existing };
  });
}

/** Audit an enroll whose token was refused before any machine changed (the token itself is never stored). */
export function recordEnrollRefusal(db: Db, o: { code: ErrorCode; mac: string; sourceIp: string; now: number }): void {
  const known = getMachineByMac(db, o.mac);
  recordAudit(db, {
    at: o.now,
    actor: "anonymous",
    sourceIp: o.sourceIp || null,
    action: "enroll.refused",
    machineId: known?.id ?? null,
    clusterId: known?.clusterId ?? null,
    detail: { code: o.code, mac: o.mac },
  });
}
