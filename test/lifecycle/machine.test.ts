import { describe, expect, it } from "vitest";
import { bootAnswer, configGate, eventGate, machineStates, next, seedCarriesAgent, transitions, type MachineState } from "../../server/lifecycle/machine.js";
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
  it("boot: joined → local disk, rejected/retired → message, everything else → installer", () => {
    expect(states.map((s) => [s, bootAnswer(s)])).toEqual([
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

  it("seed: only rejected and retired machines get no agent", () => {
    expect(states.filter((s) => !seedCarriesAgent(s))).toEqual(["rejected", "retired"]);
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
