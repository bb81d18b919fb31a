/**
 * Enrolling with a bootstrap token: spend its `jti` and create or update the machine, in one
 * transaction. A refused attempt writes only its audit record and never spends the token.
 */
import { and, eq, inArray, lt } from "drizzle-orm";
import type { Db, Queryable } from "../../db/client.js";
import { machines, usedTokens, type MachineConflict, type MachineRow } from "../../db/schema.js";
import { seatAfterReinstall } from "../quorum/seats.js";
import { decideEnrollment, meaningfulSerial, meaningfulUuid, type EnrollRequest } from "../enrollment/enroll.js";
import type { PolicyApproval } from "../policy/decide.js";
import type { BootstrapClaims } from "../enrollment/tokens.js";
import { refuse, type ErrorCode } from "../errors.js";
import { recordAudit } from "./audit.js";
import { getCluster } from "./clusters.js";
import { getMachineByMac } from "./machines.js";
import { auditAutoApproval, decidePolicy, spendApproval } from "./policy.js";
import { transact } from "./transaction.js";

/** Conflicts kept on a machine: the newest, so a flood of junk enrolls cannot grow a row without bound. */
export const maxConflicts = 20;

function serverSeats(tx: Queryable, clusterId: number | null) {
  if (clusterId === null) return [];
  return tx
    .select({ id: machines.id, role: machines.role, k3sStartedAt: machines.k3sStartedAt })
    .from(machines)
    .where(and(eq(machines.clusterId, clusterId), inArray(machines.role, ["init", "server"])))
    .all()
    .map((r) => ({ ...r, role: r.role! }));
}

/**
 * Pre-registrations and auto-approve rules (`/api/v1/machines`, `/api/v1/rules`): the approval
 * that lands a machine's first enroll in `approved` instead of `pending`, if one matches. Only a
 * first enroll (`discovered`, or never seen) asks: a machine enrolling again goes to `pending`.
 */
function matchesPreRegistration(tx: Queryable, request: EnrollRequest, existing: MachineRow | undefined, sourceIp: string): PolicyApproval | null {
  if (existing && existing.state !== "discovered") return null;
  const claims = {
    mac: request.mac,
    serial: meaningfulSerial(request.serial) ?? existing?.serial ?? undefined,
    uuid: meaningfulUuid(request.uuid) ?? existing?.uuid ?? undefined,
    // The socket's address, never the body's `ip`: the sender writes that itself.
    ip: sourceIp || undefined,
    manufacturer: request.facts?.manufacturer ?? existing?.manufacturer ?? undefined,
    product: request.facts?.product ?? existing?.product ?? undefined,
  };
  return decidePolicy(tx, claims, existing).approval;
}

/** Enroll with a verified bootstrap token; a replayed `jti` is refused. */
export function enrollMachine(
  db: Db,
  o: {
    claims: BootstrapClaims;
    request: EnrollRequest;
    sourceIp: string;
    now: number;
    /** Whether a refusal may still be audited (per source and machine rate limits); refusals past it are counted, not stored. */
    mayAudit?: (machineId: number | null) => boolean;
  },
): { machine: MachineRow; created: boolean } {
  const { claims, request, now } = o;
  const mayAudit = o.mayAudit ?? (() => true);
  return transact(db, (tx) => {
    const existing = getMachineByMac(tx, request.mac);
    const refused = (code: ErrorCode, message: string, detail: Record<string, unknown>) => {
      if (!mayAudit(existing?.id ?? null)) return refuse(code, message);
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
    const approval = matchesPreRegistration(tx, request, existing, o.sourceIp);
    const decision = decideEnrollment({
      claims,
      request,
      machine: existing,
      tokenClusterExists: getCluster(tx, claims.clusterId) !== undefined,
      preApproved: approval !== null,
    });
    if (decision.kind === "refuse") return refused(decision.refusal.code, decision.refusal.message, decision.refusal.detail);
    if (decision.kind === "conflict") {
      // Nothing issued, nothing changed but the record of it, which the admin must look at.
      const conflict: MachineConflict = { at: now, source_ip: o.sourceIp || null, facts: request.facts ?? null };
      tx.update(machines)
        .set({ conflicts: [...existing!.conflicts, conflict].slice(-maxConflicts) })
        .where(eq(machines.id, existing!.id))
        .run();
      if (mayAudit(existing!.id)) {
        recordAudit(tx, {
          at: now,
          actor: "anonymous",
          sourceIp: o.sourceIp || null,
          action: "enroll.conflict",
          machineId: existing!.id,
          clusterId: existing!.clusterId,
          detail: { code: "already_enrolled", mac: request.mac, state: existing!.state, jti: claims.jti, kid: claims.kid },
        });
      }
      return refuse("already_enrolled", decision.message, { node_id: existing!.id });
    }

    const facts = {
      ...(request.facts ?? {}),
      ...(request.hostname ? { hostname: request.hostname } : {}),
      ...(request.ip ? { ip: request.ip } : {}),
    };
    const uuid = meaningfulUuid(request.uuid);
    const serial = meaningfulSerial(request.serial);
    // Before its first enrollment only anonymous sightings described the machine: the enroll's own
    // identity wins. After one, a known identity is never overwritten (a conflict was refused above).
    const firstEnroll = existing?.enrolledGeneration === null;
    const keep = <T>(known: T | null | undefined, sent: T | undefined, meaningful: (v: T | null | undefined) => unknown) =>
      firstEnroll ? (sent ?? known ?? null) : meaningful(known) ? (known ?? null) : (sent ?? known ?? null);
    // A failed machine that installed again: its seat is kept or freed as a reinstall's would be.
    const seat = existing && decision.revokeCredentials && existing.role !== null ? seatAfterReinstall(existing, serverSeats(tx, existing.clusterId)) : "none";
    const enrolled = existing
      ? tx
          .update(machines)
          .set({
            uuid: keep(existing.uuid, uuid, meaningfulUuid),
            serial: keep(existing.serial, serial, meaningfulSerial),
            manufacturer: keep(existing.manufacturer, request.facts?.manufacturer, (v) => v),
            product: keep(existing.product, request.facts?.product, (v) => v),
            arch: request.arch || existing.arch,
            enrolledGeneration: existing.installGeneration,
            ...(seat === "free" ? { role: null, roleAssignedAt: null, k3sStartedAt: null, readyAt: null, caHash: null } : {}),
            clusterId: decision.clusterId,
            facts,
            lastIp: o.sourceIp || existing.lastIp,
            lastSeenAt: now,
            // This install got as far as its agent: an earlier install failure is history.
            installFailedAt: null,
            approvedBeforeEnroll: false,
            ...(decision.nextState === "pending" ? { approvedBy: null } : {}),
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
            enrolledGeneration: 0,
            state: decision.nextState,
            firstSeenAt: now,
            lastSeenAt: now,
            stateChangedAt: now,
          })
          .returning()
          .get();
    let machine = enrolled;
    if (approval && decision.stateChanged && decision.nextState === "approved") {
      // Spent here, in the enroll's own transaction: a rule's limit never approves one machine too many.
      const fields = spendApproval(tx, enrolled, approval, now);
      machine = tx
        .update(machines)
        .set(fields ?? { state: "pending" })
        .where(eq(machines.id, enrolled.id))
        .returning()
        .get();
      if (fields) auditAutoApproval(tx, machine, approval, { now, sourceIp: o.sourceIp || null, at: "enroll" });
    }
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
        ...(seat !== "none" ? { seat } : {}),
        install_generation: machine.installGeneration,
        jti: claims.jti,
        kid: claims.kid,
      },
    });
    return { machine, created: !existing };
  });
}

/** Audit an enroll whose token was refused before any machine changed (the token itself is never stored). */
export function recordEnrollRefusal(
  db: Db,
  o: { code: ErrorCode; mac: string; sourceIp: string; now: number; mayAudit?: (machineId: number | null) => boolean },
): void {
  const known = getMachineByMac(db, o.mac);
  if (o.mayAudit && !o.mayAudit(known?.id ?? null)) return;
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
