/**
 * The approval policy: given what a machine says about itself, which pre-registration or
 * auto-approve rule approves it, into which cluster and role, and why every other one did not.
 * Pure: plain records in, a decision out. The store runs it inside the enroll transaction (so a
 * rule's limit counts down atomically) and `GET /api/v1/explain` runs it without writing.
 *
 * Order: a pre-registration wins over every rule (an admin named this very machine); among
 * pre-registrations MAC beats UUID beats serial, then the oldest. Among rules the most specific
 * wins: more conditions given, then the longer CIDR prefix, then the longer serial prefix; ties
 * go to the oldest rule. A machine with an unresolved conflict is never approved by policy.
 */
import type { RolePreference } from "../lifecycle/machine.js";
import { meaningfulSerial, meaningfulUuid } from "../enrollment/enroll.js";
import { cidrBits, ipv4InCidr } from "./cidr.js";

/** What the machine claims: from its enroll request, its boot query, or an admin's explain query. */
export type MachineClaims = {
  mac?: string | undefined;
  serial?: string | undefined;
  uuid?: string | undefined;
  /** The request's source address (never the body's `ip`, which the sender writes itself). */
  ip?: string | undefined;
  manufacturer?: string | undefined;
  product?: string | undefined;
};

/** A pre-registered machine as the policy sees it. */
export type PreRegistration = {
  id: number;
  mac: string | null;
  serial: string | null;
  uuid: string | null;
  clusterId: number;
  hostname: string | null;
  labels: Record<string, string>;
  role: RolePreference;
  /** The machine it already approved; it approves no other. */
  machineId: number | null;
};

/** An auto-approve rule as the policy sees it. */
export type ApprovalRule = {
  id: number;
  name: string;
  clusterId: number;
  match: { cidr: string | null; manufacturer: string | null; product: string | null; serialPrefix: string | null };
  role: RolePreference | null;
  /** Approvals left; null = no limit. */
  remaining: number | null;
  enabled: boolean;
  createdAt: number;
};

/** One pre-registration or rule considered, and whether (and why not) it matched. */
export type Consideration = {
  kind: "pre_registration" | "rule";
  id: number;
  /** `machine:<id>` for a pre-registration, the rule's name for a rule. */
  name: string;
  matched: boolean;
  /** True for the one that approves. */
  chosen: boolean;
  reason: string;
};

/** Who approves, and with what. */
export type PolicyApproval = {
  kind: "pre_registration" | "rule";
  id: number;
  /** What `approved_by` records: `machine:<id>` or `rule:<name>`. */
  approvedBy: string;
  /** The pre-registration id (`machine:<id>`) or the rule's name. */
  name: string;
  clusterId: number;
  role: RolePreference;
  hostname: string | null;
  labels: Record<string, string> | null;
};

/** The policy's answer: an approval or none, and the story behind it. */
export type PolicyDecision = { approval: PolicyApproval | null; why: Consideration[]; blockedBy: "conflict" | null };

const same = (a: string | null | undefined, b: string | null | undefined) => !!a && !!b && a.trim().toLowerCase() === b.trim().toLowerCase();

/** How a pre-registration names the machine, and whether the claims agree. */
function preRegistrationMatch(p: PreRegistration, c: MachineClaims, machineId: number | undefined): { matched: boolean; reason: string; rank: number } {
  const by = p.mac ? "MAC" : p.uuid ? "SMBIOS UUID" : "serial";
  const rank = p.mac ? 0 : p.uuid ? 1 : 2;
  const expected = p.mac ?? p.uuid ?? p.serial ?? "";
  const claimed = p.mac ? c.mac : p.uuid ? meaningfulUuid(c.uuid) : meaningfulSerial(c.serial);
  if (!same(expected, claimed)) return { matched: false, reason: `${by} ${claimed ?? "(none given)"} is not ${expected}`, rank };
  if (p.machineId !== null && p.machineId !== machineId) {
    return { matched: false, reason: `${by} ${expected} matches, but this pre-registration already approved machine ${p.machineId}`, rank };
  }
  return { matched: true, reason: `${by} ${expected} matches`, rank };
}

/** Which of a rule's conditions hold for the claims; the first that fails says why. */
function ruleMatch(r: ApprovalRule, c: MachineClaims): { matched: boolean; reason: string } {
  const { cidr, manufacturer, product, serialPrefix } = r.match;
  const held: string[] = [];
  if (cidr !== null) {
    if (!c.ip || !ipv4InCidr(c.ip, cidr)) return { matched: false, reason: `source ${c.ip ?? "(unknown)"} is not in ${cidr}` };
    held.push(`source ${c.ip} in ${cidr}`);
  }
  if (manufacturer !== null) {
    if (!same(manufacturer, c.manufacturer)) return { matched: false, reason: `manufacturer ${c.manufacturer ?? "(none given)"} is not ${manufacturer}` };
    held.push(`manufacturer ${manufacturer}`);
  }
  if (product !== null) {
    if (!same(product, c.product)) return { matched: false, reason: `product ${c.product ?? "(none given)"} is not ${product}` };
    held.push(`product ${product}`);
  }
  if (serialPrefix !== null) {
    const serial = meaningfulSerial(c.serial);
    if (!serial?.toLowerCase().startsWith(serialPrefix.toLowerCase())) {
      return { matched: false, reason: `serial ${serial ?? "(none given)"} does not start with ${serialPrefix}` };
    }
    held.push(`serial starts with ${serialPrefix}`);
  }
  if (!r.enabled) return { matched: false, reason: `disabled (its conditions hold: ${held.join(", ")})` };
  if (r.remaining !== null && r.remaining <= 0)
    return { matched: false, reason: `its limit is used up: 0 approvals left (its conditions hold: ${held.join(", ")})` };
  return { matched: true, reason: held.join(", ") };
}

/** How specific a rule is, compared left to right: conditions given, CIDR prefix length, serial prefix length. */
export function ruleSpecificity(r: Pick<ApprovalRule, "match">): [number, number, number] {
  const { cidr, manufacturer, product, serialPrefix } = r.match;
  const given = [cidr, manufacturer, product, serialPrefix].filter((v) => v !== null).length;
  return [given, cidr === null ? -1 : cidrBits(cidr), serialPrefix?.length ?? 0];
}

/** Negative when `a` wins over `b`: more specific first, then older, then the lower id. */
export function compareRules(a: ApprovalRule, b: ApprovalRule): number {
  const sa = ruleSpecificity(a);
  const sb = ruleSpecificity(b);
  for (let i = 0; i < sa.length; i++) if (sa[i] !== sb[i]) return sb[i]! - sa[i]!;
  return a.createdAt - b.createdAt || a.id - b.id;
}

/**
 * Decide whether policy approves a machine. `preRegistrations` are the candidates whose identity
 * the store found for the claims (any others cannot match); `rules` are all rules, enabled or not.
 * `machineId` is the machine's row when it has one (a pre-registration keeps approving the machine
 * it already approved, e.g. after a reinstall).
 */
export function decideApproval(o: {
  claims: MachineClaims;
  machineId?: number | undefined;
  preRegistrations: PreRegistration[];
  rules: ApprovalRule[];
  hasConflict: boolean;
}): PolicyDecision {
  const pres = o.preRegistrations.map((p) => ({ p, ...preRegistrationMatch(p, o.claims, o.machineId) })).sort((a, b) => a.rank - b.rank || a.p.id - b.p.id);
  const rules = [...o.rules].sort(compareRules).map((r) => ({ r, ...ruleMatch(r, o.claims) }));

  const pre = pres.find((x) => x.matched);
  const rule = pre ? undefined : rules.find((x) => x.matched);
  const approval: PolicyApproval | null = pre
    ? {
        kind: "pre_registration",
        id: pre.p.id,
        approvedBy: `machine:${pre.p.id}`,
        name: `machine:${pre.p.id}`,
        clusterId: pre.p.clusterId,
        role: pre.p.role,
        hostname: pre.p.hostname,
        labels: pre.p.labels,
      }
    : rule
      ? {
          kind: "rule",
          id: rule.r.id,
          approvedBy: `rule:${rule.r.name}`,
          name: rule.r.name,
          clusterId: rule.r.clusterId,
          role: rule.r.role ?? "auto",
          hostname: null,
          labels: null,
        }
      : null;
  const winner = pre ? `pre-registration machine:${pre.p.id}` : rule ? `rule ${rule.r.name}` : "";
  const conflict = "the machine has an unresolved enrollment conflict: policy never approves it (an admin decides)";

  const why: Consideration[] = [
    ...pres.map((x) => ({ kind: "pre_registration" as const, id: x.p.id, name: `machine:${x.p.id}`, matched: x.matched, chosen: x === pre, reason: x.reason })),
    ...rules.map((x) => ({ kind: "rule" as const, id: x.r.id, name: x.r.name, matched: x.matched, chosen: x === rule, reason: x.reason })),
  ].map((c) => {
    if (!c.matched) return c;
    if (o.hasConflict) return { ...c, chosen: false, reason: `${c.reason}; but ${conflict}` };
    if (c.chosen) return { ...c, reason: `${c.reason}: approves` };
    const lost = pre && c.kind === "rule" ? "a pre-registration wins over every rule" : `${winner} wins (more specific, or older at equal specificity)`;
    return { ...c, reason: `${c.reason}; but ${lost}` };
  });
  if (o.hasConflict) return { approval: null, why, blockedBy: approval ? "conflict" : null };
  return { approval, why, blockedBy: null };
}
