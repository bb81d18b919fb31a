/**
 * The life of a machine, in one place: its states, the events that move it between them (as
 * data, like etcd's raft steps), and the gates that say what a machine in a state may have: the
 * installer, a bootstrap token, its k3s config. Handlers and store functions ask this module
 * instead of spelling states out. Pure: no framework, no SQL. The README's state diagram is
 * held to `transitions` by test/lifecycle/diagram.test.ts.
 */

export const machineStates = ["discovered", "pending", "approved", "provisioning", "joined", "rejected", "failed", "retired"] as const;
/** Where a machine is in its life. */
export type MachineState = (typeof machineStates)[number];

/** A quorum seat. `init` is the one server that ran `cluster-init`; `server` joined it; `agent` runs workloads. */
export const machineRoles = ["init", "server", "agent"] as const;
export type MachineRole = (typeof machineRoles)[number];

/** What the admin asked for at approval; `agent` is honoured, `server` only if a seat is free. */
export const rolePreferences = ["auto", "server", "agent"] as const;
export type RolePreference = (typeof rolePreferences)[number];

/** Something that happens to a machine and may change its state. */
export type MachineEvent =
  | "enroll"
  | "enroll_pre_approved"
  | "reenroll"
  | "approve"
  | "reject"
  | "release_config"
  | "ready"
  | "lease_expired"
  | "report_failure"
  | "retire";

/** One allowed move. `seatless`: only while the machine holds no quorum seat. */
export type Transition = { event: MachineEvent; from: readonly MachineState[]; to: MachineState; seatless?: boolean };

const allBut = (...not: MachineState[]) => machineStates.filter((s) => !not.includes(s));

/** Every state change edgejoin makes. Nothing else moves a machine. */
export const transitions: readonly Transition[] = [
  // First enrollment with a bootstrap token; a pre-registration or policy approves at once.
  { event: "enroll", from: ["discovered"], to: "pending" },
  { event: "enroll_pre_approved", from: ["discovered"], to: "approved" },
  // The seed is unauthenticated and MACs, UUIDs and serials are no secrets: enrolling again
  // only ever lands in pending, with earlier credentials revoked and the seat kept.
  { event: "reenroll", from: ["approved", "provisioning", "joined", "failed"], to: "pending" },
  { event: "approve", from: ["pending", "rejected", "failed", "retired"], to: "approved" },
  // A seat holder is retired instead, so its seat is freed by the quorum rules.
  { event: "reject", from: ["discovered", "pending", "approved", "failed"], to: "rejected", seatless: true },
  // The machine's first config answer gives (or renews) its seat.
  { event: "release_config", from: ["approved"], to: "provisioning" },
  // `ready` from a seat holder; `failed` is there because a server that failed after k3s ran keeps its seat.
  { event: "ready", from: ["approved", "provisioning", "joined", "failed"], to: "joined" },
  { event: "lease_expired", from: ["approved", "provisioning"], to: "failed" },
  { event: "report_failure", from: ["pending", "approved", "provisioning", "joined"], to: "failed" },
  { event: "retire", from: allBut("retired"), to: "retired" },
];

const byEvent = new Map(transitions.map((t) => [t.event, t]));

/** The machine as the lifecycle rules need to see it. */
export type LifecycleView = { state: MachineState; role: MachineRole | null };

/** Where `event` takes the machine, or why it may not happen (a sentence for the admin). */
export function next(event: MachineEvent, m: LifecycleView): { to: MachineState } | { refused: string } {
  const t = byEvent.get(event)!;
  if (!t.from.includes(m.state)) {
    if (m.state === t.to) return { refused: `the machine is already ${m.state}` };
    return { refused: `the machine is ${m.state}; ${event.replaceAll("_", " ")} needs one of: ${t.from.join(", ")}` };
  }
  if (t.seatless && m.role !== null) return { refused: `the machine is ${m.state} with role ${m.role}; retire it instead, which frees its seat` };
  return { to: t.to };
}

/** True when `event` may happen to the machine now. */
export function allows(event: MachineEvent, m: LifecycleView): boolean {
  return "to" in next(event, m);
}

/** What `/boot.ipxe` answers a machine in this state. */
export type BootAnswer = "install" | "local_disk" | "rejected" | "retired";

/** The boot gate: installed machines boot their disk; turned-away ones get a message; the rest install. */
export function bootAnswer(state: MachineState): BootAnswer {
  switch (state) {
    case "joined":
      return "local_disk";
    case "rejected":
      return "rejected";
    case "retired":
      return "retired";
    default:
      return "install";
  }
}

/** The seed gate: PXE cannot authenticate anyone, so a machine an admin turned away gets nothing to enroll with. */
export function seedCarriesAgent(state: MachineState): boolean {
  return state !== "rejected" && state !== "retired";
}

/** Why an agent must stop for good; the error codes the node API answers with. */
export type StopCode = "machine_rejected" | "machine_retired" | "seat_revoked" | "invalid_state";

/** The join gate: what a machine with a valid node credential gets when it asks for its config. */
export type ConfigGate = { kind: "stop"; code: StopCode; message: string } | { kind: "wait"; reason: "pending_approval" } | { kind: "ask_quorum" };

/** The join gate's view: seat revocations and cluster membership matter beside the state. */
export type ConfigGateView = LifecycleView & { seatRevokedAt: number | null; clusterId: number | null };

/**
 * Whether a machine may ask the quorum for a seat and its config: turned-away machines stop,
 * waiting ones wait for a human, a failed one whose seat was taken back must be approved again.
 */
export function configGate(m: ConfigGateView): ConfigGate {
  const stopped = stopFor(m.state);
  if (stopped) return stopped;
  switch (m.state) {
    case "discovered":
    case "pending":
      return { kind: "wait", reason: "pending_approval" };
    case "failed":
      if (m.seatRevokedAt !== null)
        return { kind: "stop", code: "seat_revoked", message: "this machine's quorum seat was taken back; an admin must approve it again" };
      if (m.role === null) return { kind: "stop", code: "invalid_state", message: "this machine reported a failure; an admin must approve it again" };
      break;
    default:
      break;
  }
  if (m.clusterId === null) return { kind: "stop", code: "invalid_state", message: "this machine belongs to no cluster; approve it into one" };
  return { kind: "ask_quorum" };
}

/** The event gate: a machine an admin turned away reports nothing more. */
export function eventGate(state: MachineState): Extract<ConfigGate, { kind: "stop" }> | undefined {
  return stopFor(state);
}

function stopFor(state: MachineState): Extract<ConfigGate, { kind: "stop" }> | undefined {
  if (state === "rejected") return { kind: "stop", code: "machine_rejected", message: "an admin rejected this machine; the agent should stop" };
  if (state === "retired") return { kind: "stop", code: "machine_retired", message: "this machine was retired from its cluster; the agent should stop" };
  return undefined;
}
