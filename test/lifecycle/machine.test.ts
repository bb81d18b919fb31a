import { describe, expect, it } from "vitest";
import {
  approvalReopensInstall,
  bootAnswer,
  configGate,
  eventGate,
  hasLiveEnrollment,
  hasUnresolvedConflict,
  isFinalInstallerEvent,
  machineStates,
  next,
  seedCarriesAgent,
  transitions,
  type MachineState,
} from "../../server/lifecycle/machine.js";
import { chooseNodeName } from "../../server/lifecycle/node-name.js";

const states = machineStates as readonly MachineState[];

describe("lifecycle transitions", () => {
  it("each event is listed once and only moves from its listed states", () => {
    expect(new Set(transitions.map((t) => t.event)).size).toBe(transitions.length);
    for (const t of transitions) {
      for (const state of states) {
        const move = next(t.event, { state, role: null });
        if (t.from.includes(state)) expect(move).toEqual({ to: t.to });
        else expect(move).toHaveProperty("refused");
      }
    }
  });

  it("reject of a seat holder → refused with a pointer to retire; retired can only be approved again", () => {
    const move = next("reject", { state: "approved", role: "agent" });
    expect(move).toHaveProperty("refused", expect.stringMatching(/retire/));
    const fromRetired = transitions.filter((t) => t.from.includes("retired")).map((t) => t.event);
    expect(fromRetired).toEqual(["approve"]);
  });

  it("an approve of an already approved machine says so", () => {
    expect(next("approve", { state: "approved", role: null })).toEqual({ refused: "the machine is already approved" });
  });
});

describe("gates", () => {
  const fresh = { installGeneration: 0, enrolledGeneration: null, installedAt: null };
  const enrolled = { installGeneration: 0, enrolledGeneration: 0, installedAt: null };
  const installed = { installGeneration: 0, enrolledGeneration: null, installedAt: 5 };
  const reinstalling = { installGeneration: 1, enrolledGeneration: 0, installedAt: null };

  it("boot, never enrolled nor installed: joined → local disk, rejected/retired → message, everything else → installer", () => {
    expect(states.map((s) => [s, bootAnswer({ state: s, ...fresh })])).toEqual([
      ["discovered", "install"],
      ["pending", "install"],
      ["approved", "install"],
      ["provisioning", "install"],
      ["joined", "local_disk"],
      ["rejected", "rejected"],
      ["failed", "install"],
      ["retired", "retired"],
    ]);
  });

  it("boot, the installer runs once per install: enrolled or installed → local disk (failed reinstalls); an admin's reinstall → installer again", () => {
    for (const done of [enrolled, installed]) {
      expect(states.map((s) => [s, bootAnswer({ state: s, ...done })])).toEqual([
        ["discovered", "local_disk"],
        ["pending", "local_disk"],
        ["approved", "local_disk"],
        ["provisioning", "local_disk"],
        ["joined", "local_disk"],
        ["rejected", "rejected"],
        ["failed", "install"],
        ["retired", "retired"],
      ]);
    }
    expect(bootAnswer({ state: "pending", ...reinstalling })).toBe("install");
    expect(bootAnswer({ state: "pending", ...fresh }, "after_approval")).toBe("wait_for_approval");
    expect(bootAnswer({ state: "pending", ...enrolled }, "after_approval")).toBe("local_disk");
  });

  it("seed: a bootstrap token only where an install may run — never rejected/retired, never a machine whose install is over", () => {
    expect(states.filter((s) => !seedCarriesAgent({ state: s, ...fresh }))).toEqual(["rejected", "retired"]);
    expect(states.filter((s) => seedCarriesAgent({ state: s, ...enrolled }))).toEqual(["failed"]);
    expect(seedCarriesAgent({ state: "joined", ...installed })).toBe(false);
    expect(seedCarriesAgent({ state: "pending", ...reinstalling })).toBe(true);
  });

  it("one enrollment per install, conflicts, the installer's final success, approvals that reopen an install", () => {
    expect(hasLiveEnrollment({ state: "joined", ...enrolled })).toBe(true);
    expect(hasLiveEnrollment({ state: "failed", ...enrolled })).toBe(false);
    expect(hasLiveEnrollment({ state: "pending", ...reinstalling })).toBe(false);
    expect(hasUnresolvedConflict({ conflicts: [] })).toBe(false);
    expect(hasUnresolvedConflict({ conflicts: [{ at: 1, source_ip: "10.0.0.9", facts: null }] })).toBe(true);
    expect(isFinalInstallerEvent({ name: "subiquity/Install/install", event_type: "finish", result: "SUCCESS" })).toBe(true);
    expect(isFinalInstallerEvent({ name: "subiquity/Install/install", event_type: "finish", result: "FAIL" })).toBe(false);
    expect(isFinalInstallerEvent({ name: "subiquity/Install/install/configure_storage", event_type: "finish", result: "SUCCESS" })).toBe(false);
    expect(isFinalInstallerEvent({ name: "subiquity/Install/install", event_type: "start" })).toBe(false);
    // Revoked (retired, rejected, seat taken back) after its install ended: approving it means installing again.
    expect(approvalReopensInstall({ state: "retired", installGeneration: 0, enrolledGeneration: null, installedAt: 5 })).toBe(true);
    expect(approvalReopensInstall({ state: "failed", ...enrolled })).toBe(false);
    expect(approvalReopensInstall({ state: "pending", ...reinstalling })).toBe(false);
  });

  it("config: stop, wait or ask the quorum, by state, seat and cluster", () => {
    const gate = (state: MachineState, o: { role?: "agent" | null; seatRevokedAt?: number | null; clusterId?: number | null } = {}) =>
      configGate({ state, role: o.role ?? null, seatRevokedAt: o.seatRevokedAt ?? null, clusterId: o.clusterId === undefined ? 1 : o.clusterId });
    expect(gate("rejected")).toMatchObject({ kind: "stop", code: "machine_rejected" });
    expect(gate("retired")).toMatchObject({ kind: "stop", code: "machine_retired" });
    expect(gate("pending")).toEqual({ kind: "wait", reason: "pending_approval" });
    expect(gate("discovered")).toEqual({ kind: "wait", reason: "pending_approval" });
    expect(gate("failed", { seatRevokedAt: 5 })).toMatchObject({ kind: "stop", code: "seat_revoked" });
    expect(gate("failed")).toMatchObject({ kind: "stop", code: "invalid_state" });
    expect(gate("failed", { role: "agent" })).toEqual({ kind: "ask_quorum" });
    expect(gate("approved", { clusterId: null })).toMatchObject({ kind: "stop", code: "invalid_state" });
    expect(gate("approved")).toEqual({ kind: "ask_quorum" });
    const conflicted = { role: null, seatRevokedAt: null, clusterId: 1, conflicts: [{ at: 1, source_ip: null, facts: null }] };
    expect(configGate({ state: "joined", ...conflicted })).toEqual({ kind: "wait", reason: "conflict" });
    expect(configGate({ state: "rejected", ...conflicted })).toMatchObject({ kind: "stop", code: "machine_rejected" });
    expect(eventGate("rejected")?.code).toBe("machine_rejected");
    expect(eventGate("joined")).toBeUndefined();
  });
});

describe("the one node-name rule", () => {
  const cluster = { name: "site", hostnamePattern: "edge-{id}" };
  const machine = { id: 7, mac: "52:54:00:aa:bb:cc", hostname: null };

  it("no name yet → the cluster's pattern; taken → pattern with -id, then node-<mac>", () => {
    expect(chooseNodeName(machine, cluster, () => false)).toBe("edge-7");
    expect(chooseNodeName(machine, cluster, (n) => n === "edge-7")).toBe("edge-7-7");
    expect(chooseNodeName(machine, cluster, (n) => n.startsWith("edge-"))).toBe("node-525400aabbcc");
  });

  it("keeps the name it has unless another live machine holds it; never returns a non-DNS label", () => {
    expect(chooseNodeName({ ...machine, hostname: "rack1-a" }, cluster, () => false)).toBe("rack1-a");
    expect(chooseNodeName({ ...machine, hostname: "rack1-a" }, cluster, (n) => n === "rack1-a")).toBe("edge-7");
    expect(chooseNodeName({ ...machine, hostname: "Bad_Name" }, cluster, () => false)).toBe("edge-7");
    expect(chooseNodeName(machine, undefined, () => false)).toBe("node-525400aabbcc");
  });
});
