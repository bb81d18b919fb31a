/**
 * Pre-registrations and auto-approve rules in SQLite: their admin CRUD, and applying the pure
 * policy (`server/policy/decide.ts`) inside the transaction that enrolls (or, in an
 * `after_approval` cluster, boots) a machine, so a rule's limit counts down atomically.
 */
import { and, asc, eq, gt, isNull, or, sql } from "drizzle-orm";
import type { Db, Queryable } from "../../db/client.js";
import { approvalRules, machines, preRegistrations, type ApprovalRuleRow, type MachineRow, type PreRegistrationRow } from "../../db/schema.js";
import { refuse } from "../errors.js";
import { meaningfulSerial, meaningfulUuid } from "../enrollment/enroll.js";
import { decideApproval, type ApprovalRule, type MachineClaims, type PolicyApproval, type PolicyDecision, type PreRegistration } from "../policy/decide.js";
import { explain, type Explanation } from "../policy/explain.js";
import type { PreRegistrationCreate, RuleCreate, RulePatch } from "../policy/spec.js";
import { quorumView } from "../quorum/report.js";
import { recordAudit } from "./audit.js";
import { getCluster, matchCluster } from "./clusters.js";
import { getMachineByMac, moved, nameTakenIn } from "./machines.js";
import { fetchSize, pageOf, pastCursor, type Page, type PageRequest } from "./pagination.js";
import { transact } from "./transaction.js";

/** Who changed a pre-registration or rule, from where, when. */
export type PolicyAudit = { actor: string; sourceIp?: string | null | undefined; now: number };

/**
 * The conflict predicate: true while the machine holds an unresolved enrollment conflict
 * (`409 already_enrolled` recorded on it). Policy never approves such a machine.
 */
export function hasUnresolvedConflict(m: MachineRow | undefined): boolean {
  return m !== undefined && m.conflicts.length > 0;
}

function asPreRegistration(r: PreRegistrationRow): PreRegistration {
  return {
    id: r.id,
    mac: r.mac,
    serial: r.serial,
    uuid: r.uuid,
    clusterId: r.clusterId,
    hostname: r.hostname,
    labels: r.labels,
    role: r.role,
    machineId: r.machineId,
  };
}

function asRule(r: ApprovalRuleRow): ApprovalRule {
  return {
    id: r.id,
    name: r.name,
    clusterId: r.clusterId,
    match: { cidr: r.matchCidr, manufacturer: r.matchManufacturer, product: r.matchProduct, serialPrefix: r.matchSerialPrefix },
    role: r.role,
    remaining: r.remaining,
    enabled: r.enabled,
    createdAt: r.createdAt,
  };
}

/** Pre-registrations that name any identity in the claims: the only ones that could match. */
function candidatePreRegistrations(db: Queryable, c: MachineClaims): PreRegistrationRow[] {
  const serial = meaningfulSerial(c.serial);
  const uuid = meaningfulUuid(c.uuid);
  const by = [
    c.mac ? eq(preRegistrations.mac, c.mac) : undefined,
    serial ? sql`lower(${preRegistrations.serial}) = ${serial.toLowerCase()}` : undefined,
    uuid ? eq(preRegistrations.uuid, uuid) : undefined,
  ].filter((x) => x !== undefined);
  if (by.length === 0) return [];
  return db
    .select()
    .from(preRegistrations)
    .where(or(...by))
    .orderBy(asc(preRegistrations.id))
    .limit(50)
    .all();
}

/** Run the policy for these claims against what is stored now. Writes nothing. */
export function decidePolicy(db: Queryable, c: MachineClaims, machine: MachineRow | undefined): PolicyDecision {
  return decideApproval({
    claims: c,
    machineId: machine?.id,
    preRegistrations: candidatePreRegistrations(db, c).map(asPreRegistration),
    rules: db.select().from(approvalRules).orderBy(asc(approvalRules.id)).all().map(asRule),
    hasConflict: hasUnresolvedConflict(machine),
  });
}

/** The machine columns an automatic approval sets. */
export type PolicyApprovalFields = Pick<MachineRow, "clusterId" | "rolePreference" | "approvedBy"> & Partial<Pick<MachineRow, "hostname" | "labels">>;

/**
 * Spend the approval inside the caller's transaction: a pre-registration is bound to this
 * machine; a rule's limit counts down (guarded in SQL, so it never goes below 0). Returns the
 * machine columns to set, or undefined when the rule's last approval went to another machine.
 */
export function spendApproval(tx: Queryable, machine: Pick<MachineRow, "id" | "hostname">, a: PolicyApproval, now: number): PolicyApprovalFields | undefined {
  if (a.kind === "rule") {
    const spent = tx
      .update(approvalRules)
      .set({
        remaining: sql`case when ${approvalRules.remaining} is null then null else ${approvalRules.remaining} - 1 end`,
        approvedCount: sql`${approvalRules.approvedCount} + 1`,
      })
      .where(and(eq(approvalRules.id, a.id), eq(approvalRules.enabled, true), or(isNull(approvalRules.remaining), gt(approvalRules.remaining, 0))))
      .returning({ id: approvalRules.id })
      .get();
    if (!spent) return undefined;
    return { clusterId: a.clusterId, rolePreference: a.role, approvedBy: a.approvedBy };
  }
  tx.update(preRegistrations).set({ machineId: machine.id, usedAt: now }).where(eq(preRegistrations.id, a.id)).run();
  // A pre-registered name already held by another machine of the cluster is left out rather than refused: the approval stands.
  const hostname = a.hostname && !nameTakenIn(tx, a.clusterId, a.hostname, machine.id) ? a.hostname : undefined;
  return {
    clusterId: a.clusterId,
    rolePreference: a.role,
    approvedBy: a.approvedBy,
    ...(hostname ? { hostname } : {}),
    ...(a.labels && Object.keys(a.labels).length > 0 ? { labels: a.labels } : {}),
  };
}

/** Audit one automatic approval with the rule's name or the pre-registration's id. */
export function auditAutoApproval(
  tx: Queryable,
  m: Pick<MachineRow, "id">,
  a: PolicyApproval,
  o: { now: number; sourceIp?: string | null; at: "enroll" | "boot" },
) {
  recordAudit(tx, {
    at: o.now,
    actor: a.approvedBy,
    sourceIp: o.sourceIp ?? null,
    action: "machine.approved",
    machineId: m.id,
    clusterId: a.clusterId,
    detail: { approved_by: a.approvedBy, ...(a.kind === "rule" ? { rule: a.name } : { pre_registration: a.id }), role: a.role, at: o.at },
  });
}

/**
 * In an `after_approval` cluster a machine must be approved before it may install, so the policy
 * runs when it boots: a matching pre-registration or rule approves it from `discovered` (its first
 * enroll then keeps the approval). Returns the machine as it is afterwards.
 */
export function approveAtBoot(db: Db, machineId: number, o: { ip: string | undefined; now: number }): MachineRow {
  return transact(db, (tx) => {
    const m = tx.select().from(machines).where(eq(machines.id, machineId)).get()!;
    const cluster = m.clusterId === null ? undefined : getCluster(tx, m.clusterId);
    if (m.state !== "discovered" || cluster?.installPolicy !== "after_approval") return m;
    const claims: MachineClaims = {
      mac: m.mac,
      serial: m.serial ?? undefined,
      uuid: m.uuid ?? undefined,
      ip: o.ip || undefined,
      manufacturer: m.manufacturer ?? undefined,
      product: m.product ?? undefined,
    };
    const approval = decidePolicy(tx, claims, m).approval;
    if (!approval) return m;
    const fields = spendApproval(tx, m, approval, o.now);
    if (!fields) return m;
    const approved = tx
      .update(machines)
      .set({ ...fields, ...moved("approve", m, o.now), approvedBeforeEnroll: true })
      .where(eq(machines.id, m.id))
      .returning()
      .get();
    auditAutoApproval(tx, approved, approval, { now: o.now, sourceIp: o.ip ?? null, at: "boot" });
    return approved;
  });
}

// ----- explain -----

/** What would happen to a machine with these claims if it enrolled now. Reads only. */
export function explainClaims(db: Db, c: MachineClaims): Explanation {
  // One read transaction: every answer comes from one snapshot.
  return db.transaction((tx) => {
    const known = c.mac ? getMachineByMac(tx, c.mac) : undefined;
    const claims: MachineClaims = known
      ? {
          ...c,
          serial: c.serial ?? known.serial ?? undefined,
          uuid: c.uuid ?? known.uuid ?? undefined,
          manufacturer: c.manufacturer ?? known.manufacturer ?? undefined,
          product: c.product ?? known.product ?? undefined,
        }
      : c;
    const decision = decidePolicy(tx, claims, known);
    return explain({
      decision,
      known,
      fallbackClusterId: known?.clusterId ?? matchCluster(tx, c.ip)?.id ?? null,
      quorumOf: (id) => {
        const cluster = getCluster(tx, id);
        if (!cluster) return undefined;
        const servers = tx
          .select()
          .from(machines)
          .where(and(eq(machines.clusterId, id), or(eq(machines.role, "init"), eq(machines.role, "server"))))
          .all();
        return { view: quorumView(cluster, servers), installPolicy: cluster.installPolicy };
      },
    });
  });
}

// ----- pre-registrations -----

/** Pre-registrations, oldest first, one page. */
export function listPreRegistrations(db: Queryable, page: PageRequest): Page<PreRegistrationRow> {
  const rows = db.select().from(preRegistrations).where(pastCursor(preRegistrations.id, page)).orderBy(asc(preRegistrations.id)).limit(fetchSize(page)).all();
  return pageOf(rows, page, (r) => r.id);
}

/** Pre-register a machine; one identity is pre-registered once. */
export function createPreRegistration(db: Db, b: PreRegistrationCreate, o: PolicyAudit): PreRegistrationRow {
  return transact(db, (tx) => {
    if (!getCluster(tx, b.cluster_id)) return refuse("validation_failed", `cluster_id: no cluster with id ${b.cluster_id}`);
    const same = b.mac
      ? eq(preRegistrations.mac, b.mac)
      : b.uuid
        ? eq(preRegistrations.uuid, b.uuid)
        : sql`lower(${preRegistrations.serial}) = ${b.serial!.toLowerCase()}`;
    const dup = tx.select({ id: preRegistrations.id }).from(preRegistrations).where(same).get();
    if (dup) return refuse("conflict", `pre-registration ${dup.id} already names this ${b.mac ? "MAC" : b.uuid ? "UUID" : "serial"}; delete it first`);
    const row = tx
      .insert(preRegistrations)
      .values({
        mac: b.mac ?? null,
        serial: b.serial ?? null,
        uuid: b.uuid ?? null,
        clusterId: b.cluster_id,
        hostname: b.hostname ?? null,
        labels: b.labels,
        role: b.role,
        createdAt: o.now,
      })
      .returning()
      .get();
    recordAudit(tx, {
      at: o.now,
      actor: o.actor,
      sourceIp: o.sourceIp || null,
      action: "pre_registration.created",
      clusterId: row.clusterId,
      detail: { id: row.id, mac: row.mac, serial: row.serial, uuid: row.uuid, role: row.role, hostname: row.hostname },
    });
    return row;
  });
}

/** Delete a pre-registration (a machine it already approved stays approved). */
export function deletePreRegistration(db: Db, id: number, o: PolicyAudit): PreRegistrationRow {
  return transact(db, (tx) => {
    const row = tx.delete(preRegistrations).where(eq(preRegistrations.id, id)).returning().get();
    if (!row) return refuse("not_found", `no pre-registration with id ${id}`);
    recordAudit(tx, { at: o.now, actor: o.actor, sourceIp: o.sourceIp || null, action: "pre_registration.deleted", clusterId: row.clusterId, detail: { id } });
    return row;
  });
}

// ----- rules -----

/** Rules, oldest first, one page. */
export function listRules(db: Queryable, page: PageRequest): Page<ApprovalRuleRow> {
  const rows = db.select().from(approvalRules).where(pastCursor(approvalRules.id, page)).orderBy(asc(approvalRules.id)).limit(fetchSize(page)).all();
  return pageOf(rows, page, (r) => r.id);
}

function ruleColumns(b: RulePatch) {
  return {
    ...(b.name !== undefined ? { name: b.name } : {}),
    ...(b.cluster_id !== undefined ? { clusterId: b.cluster_id } : {}),
    ...(b.match !== undefined
      ? {
          matchCidr: b.match.cidr ?? null,
          matchManufacturer: b.match.manufacturer ?? null,
          matchProduct: b.match.product ?? null,
          matchSerialPrefix: b.match.serial_prefix ?? null,
        }
      : {}),
    ...(b.role !== undefined ? { role: b.role } : {}),
    ...(b.limit !== undefined ? { remaining: b.limit } : {}),
    ...(b.enabled !== undefined ? { enabled: b.enabled } : {}),
  };
}

function checkRule(tx: Queryable, b: RulePatch, exceptId?: number) {
  if (b.cluster_id !== undefined && !getCluster(tx, b.cluster_id)) return refuse("validation_failed", `cluster_id: no cluster with id ${b.cluster_id}`);
  if (b.name !== undefined) {
    const other = tx.select({ id: approvalRules.id }).from(approvalRules).where(eq(approvalRules.name, b.name)).get();
    if (other && other.id !== exceptId) return refuse("conflict", `a rule named ${b.name} already exists`);
  }
  return undefined;
}

/** Create a rule. */
export function createRule(db: Db, b: RuleCreate, o: PolicyAudit): ApprovalRuleRow {
  return transact(db, (tx) => {
    const bad = checkRule(tx, b);
    if (bad) return bad;
    const row = tx
      .insert(approvalRules)
      .values({ ...ruleColumns({ ...b, name: undefined, cluster_id: undefined }), name: b.name, clusterId: b.cluster_id, createdAt: o.now, updatedAt: o.now })
      .returning()
      .get();
    recordAudit(tx, {
      at: o.now,
      actor: o.actor,
      sourceIp: o.sourceIp || null,
      action: "rule.created",
      clusterId: row.clusterId,
      detail: { id: row.id, ...b },
    });
    return row;
  });
}

/** Change a rule; `limit` sets how many approvals it has left from now. */
export function updateRule(db: Db, id: number, b: RulePatch, o: PolicyAudit): ApprovalRuleRow {
  return transact(db, (tx) => {
    if (!tx.select({ id: approvalRules.id }).from(approvalRules).where(eq(approvalRules.id, id)).get()) return refuse("not_found", `no rule with id ${id}`);
    const bad = checkRule(tx, b, id);
    if (bad) return bad;
    const row = tx
      .update(approvalRules)
      .set({ ...ruleColumns(b), updatedAt: o.now })
      .where(eq(approvalRules.id, id))
      .returning()
      .get();
    recordAudit(tx, {
      at: o.now,
      actor: o.actor,
      sourceIp: o.sourceIp || null,
      action: "rule.updated",
      clusterId: row.clusterId,
      detail: { id, rule: row.name, ...b },
    });
    return row;
  });
}

/** Delete a rule (machines it approved stay approved, their `approved_by` still names it). */
export function deleteRule(db: Db, id: number, o: PolicyAudit): ApprovalRuleRow {
  return transact(db, (tx) => {
    const row = tx.delete(approvalRules).where(eq(approvalRules.id, id)).returning().get();
    if (!row) return refuse("not_found", `no rule with id ${id}`);
    recordAudit(tx, {
      at: o.now,
      actor: o.actor,
      sourceIp: o.sourceIp || null,
      action: "rule.deleted",
      clusterId: row.clusterId,
      detail: { id, name: row.name },
    });
    return row;
  });
}
