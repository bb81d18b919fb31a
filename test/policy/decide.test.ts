import { describe, expect, it } from "vitest";
import { compareRules, decideApproval, type ApprovalRule, type PreRegistration } from "../../server/policy/decide.js";
import { roleIfApprovedNow } from "../../server/policy/explain.js";
import { ipv4InCidr, isIpv4Cidr } from "../../server/policy/cidr.js";

const claims = { mac: "52:54:00:00:00:01", serial: "G6NUC0001", ip: "10.20.0.15", manufacturer: "Intel Corporation", product: "NUC13ANHi5" };

let nextId = 1;
function rule(match: Partial<ApprovalRule["match"]>, more: Partial<ApprovalRule> = {}): ApprovalRule {
  const id = nextId++;
  return {
    id,
    name: `r${id}`,
    clusterId: 1,
    match: { cidr: null, manufacturer: null, product: null, serialPrefix: null, ...match },
    role: null,
    remaining: null,
    enabled: true,
    createdAt: 1000 + id,
    ...more,
  };
}

function pre(by: Partial<Pick<PreRegistration, "mac" | "serial" | "uuid">>, more: Partial<PreRegistration> = {}): PreRegistration {
  return { id: nextId++, mac: null, serial: null, uuid: null, clusterId: 2, hostname: "edge-1", labels: {}, role: "server", machineId: null, ...by, ...more };
}

describe("decideApproval", () => {
  it("no pre-registration and no rule → no approval, nothing considered", () => {
    expect(decideApproval({ claims, preRegistrations: [], rules: [], hasConflict: false })).toEqual({ approval: null, why: [], blockedBy: null });
  });

  it("a pre-registration wins over a matching rule; the rule says why it lost", () => {
    const p = pre({ serial: "g6nuc0001" });
    const r = rule({ manufacturer: "intel corporation" });
    const d = decideApproval({ claims, preRegistrations: [p], rules: [r], hasConflict: false });
    expect(d.approval).toMatchObject({ kind: "pre_registration", approvedBy: `machine:${p.id}`, clusterId: 2, role: "server", hostname: "edge-1" });
    expect(d.why).toEqual([
      expect.objectContaining({ kind: "pre_registration", matched: true, chosen: true, reason: "serial g6nuc0001 matches: approves" }),
      expect.objectContaining({
        kind: "rule",
        name: r.name,
        matched: true,
        chosen: false,
        reason: expect.stringContaining("a pre-registration wins over every rule"),
      }),
    ]);
  });

  it("among rules the most specific wins (more conditions, then longer CIDR prefix, then longer serial prefix), then the oldest", () => {
    const broad = rule({ cidr: "10.20.0.0/16" });
    const narrow = rule({ cidr: "10.20.0.0/24" });
    const two = rule({ cidr: "10.0.0.0/8", manufacturer: "Intel Corporation" });
    expect(decideApproval({ claims, preRegistrations: [], rules: [broad, narrow, two], hasConflict: false }).approval?.name).toBe(two.name);
    expect(decideApproval({ claims, preRegistrations: [], rules: [broad, narrow], hasConflict: false }).approval?.name).toBe(narrow.name);
    const shortPrefix = rule({ serialPrefix: "G6" });
    const longPrefix = rule({ serialPrefix: "G6NUC" });
    expect(decideApproval({ claims, preRegistrations: [], rules: [shortPrefix, longPrefix], hasConflict: false }).approval?.name).toBe(longPrefix.name);
    const older = rule({ product: "NUC13ANHi5" }, { createdAt: 5 });
    const newer = rule({ manufacturer: "Intel Corporation" }, { createdAt: 9 });
    const d = decideApproval({ claims, preRegistrations: [], rules: [newer, older], hasConflict: false });
    expect(d.approval?.name).toBe(older.name);
    expect(d.why.find((w) => w.name === newer.name)?.reason).toContain(`rule ${older.name} wins`);
    expect(compareRules(older, newer)).toBeLessThan(0);
  });

  it("every given condition must hold; the first that fails is the reason", () => {
    const r = rule({ cidr: "10.20.0.0/24", manufacturer: "Intel Corporation", product: "NUC12WSHi5" });
    const d = decideApproval({ claims, preRegistrations: [], rules: [r], hasConflict: false });
    expect(d.approval).toBeNull();
    expect(d.why[0]).toMatchObject({ matched: false, reason: "product NUC13ANHi5 is not NUC12WSHi5" });
    const away = decideApproval({ claims: { ...claims, ip: "10.21.0.1" }, preRegistrations: [], rules: [r], hasConflict: false });
    expect(away.why[0]!.reason).toBe("source 10.21.0.1 is not in 10.20.0.0/24");
    const noSource = decideApproval({ claims: { ...claims, ip: undefined }, preRegistrations: [], rules: [r], hasConflict: false });
    expect(noSource.why[0]!.reason).toBe("source (unknown) is not in 10.20.0.0/24");
  });

  it("a disabled rule and a used-up limit match nothing and say so; the next rule approves", () => {
    const off = rule({ manufacturer: "Intel Corporation", product: "NUC13ANHi5" }, { enabled: false });
    const spent = rule({ serialPrefix: "G6NUC" }, { remaining: 0 });
    const fallback = rule({ cidr: "0.0.0.0/0" });
    const d = decideApproval({ claims, preRegistrations: [], rules: [off, spent, fallback], hasConflict: false });
    expect(d.approval?.name).toBe(fallback.name);
    expect(d.why.find((w) => w.name === off.name)?.reason).toMatch(/^disabled/);
    expect(d.why.find((w) => w.name === spent.name)?.reason).toMatch(/limit is used up/);
  });

  it("placeholder serials never satisfy a serial prefix or a serial pre-registration", () => {
    const r = rule({ serialPrefix: "To be" });
    const p = pre({ serial: "To be filled by O.E.M." });
    const d = decideApproval({ claims: { ...claims, serial: "To be filled by O.E.M." }, preRegistrations: [p], rules: [r], hasConflict: false });
    expect(d.approval).toBeNull();
  });

  it("a pre-registration that already approved another machine approves no other (serials are no secrets); it still approves its own", () => {
    const p = pre({ serial: "G6NUC0001" }, { machineId: 7 });
    expect(decideApproval({ claims, machineId: 8, preRegistrations: [p], rules: [], hasConflict: false }).approval).toBeNull();
    expect(decideApproval({ claims, machineId: 7, preRegistrations: [p], rules: [], hasConflict: false }).approval?.kind).toBe("pre_registration");
  });

  it("MAC beats UUID beats serial among pre-registrations", () => {
    const bySerial = pre({ serial: "G6NUC0001" });
    const byMac = pre({ mac: "52:54:00:00:00:01" }, { clusterId: 3 });
    expect(decideApproval({ claims, preRegistrations: [bySerial, byMac], rules: [], hasConflict: false }).approval).toMatchObject({
      id: byMac.id,
      clusterId: 3,
    });
  });

  it("a machine with an unresolved conflict is never approved by policy; each match says why", () => {
    const d = decideApproval({ claims, preRegistrations: [pre({ serial: "G6NUC0001" })], rules: [rule({ cidr: "10.0.0.0/8" })], hasConflict: true });
    expect(d.approval).toBeNull();
    expect(d.blockedBy).toBe("conflict");
    expect(d.why.every((w) => !w.chosen && /unresolved enrollment conflict/.test(w.reason))).toBe(true);
  });
});

describe("roleIfApprovedNow", () => {
  const ready = (id: number, role: "init" | "server") => ({ id, role, state: "joined", roleAssignedAt: 1, k3sStartedAt: 1, readyAt: 2 });
  it("a fresh cluster gives init; a full one gives agent; a free server seat behind a joining server waits for it", () => {
    expect(roleIfApprovedNow({ desiredServers: 3, initStartedAt: null, holders: [] }, "auto")).toEqual({ role: "init", waiting: null });
    expect(roleIfApprovedNow({ desiredServers: 1, initStartedAt: 1, holders: [ready(1, "init")] }, "auto")).toEqual({ role: "agent", waiting: null });
    const joining = { id: 2, role: "server" as const, state: "provisioning", roleAssignedAt: 3, k3sStartedAt: null, readyAt: null };
    expect(roleIfApprovedNow({ desiredServers: 3, initStartedAt: 1, holders: [ready(1, "init"), joining] }, "auto")).toEqual({
      role: "server",
      waiting: "waiting_for_previous_server",
    });
    expect(roleIfApprovedNow({ desiredServers: 3, initStartedAt: 1, holders: [ready(1, "init")] }, "agent")).toEqual({ role: "agent", waiting: null });
  });
});

describe("cidr", () => {
  it("IPv4 CIDRs only; membership by prefix", () => {
    expect(isIpv4Cidr("10.0.0.0/8")).toBe(true);
    expect(isIpv4Cidr("10.0.0.256/8")).toBe(false);
    expect(isIpv4Cidr("10.0.0.0/33")).toBe(false);
    expect(isIpv4Cidr("fd00::/8")).toBe(false);
    expect(ipv4InCidr("127.0.0.2", "127.0.0.1/32")).toBe(false);
    expect(ipv4InCidr("::ffff:10.1.2.3", "10.1.0.0/16")).toBe(true);
    expect(ipv4InCidr("10.1.2.3", "0.0.0.0/0")).toBe(true);
  });
});
