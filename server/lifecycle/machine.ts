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
  | "reinstall"
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
  // One enrollment per install: a machine holding a live enrollment (pending, approved,
  // provisioning, joined) is never enrolled again (`409 already_enrolled`, a conflict for the
  // admin). A failed one that installed again enrolls as pending, earlier credentials revoked.
  { event: "reenroll", from: ["failed"], to: "pending" },
  // The admin's reinstall: credentials revoked, the seat kept or freed by the quorum rules, the
  // installer served again, and one new enrollment allowed (it lands in pending).
  { event: "reinstall", from: ["pending", "approved", "provisioning", "joined", "failed"], to: "pending" },
  // From `discovered`: approved before it installs (a cluster whose install_policy is
  // `after_approval`, or an admin who knows the machine); its first enroll keeps it approved.
  { event: "approve", from: ["discovered", "pending", "rejected", "failed", "retired"], to: "approved" },
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

/** States in which a machine holds a live enrollment (if it enrolled in its current install). */
export const liveStates: readonly MachineState[] = ["pending", "approved", "provisioning", "joined"];

/** The machine as the install gates see it: its state and where its current install is. */
export type InstallView = {
  state: MachineState;
  /** Bumped by an admin's reinstall: a new install, a new progress token, one new enrollment. */
  installGeneration: number;
  /** The install it last enrolled in; null when it never did or its enrollment was revoked. */
  enrolledGeneration: number | null;
  /** When its installer reported final success in the current install. */
  installedAt: number | null;
};

/** It enrolled in its current install and no decision revoked that enrollment since. */
export function enrolledThisInstall(m: InstallView): boolean {
  return m.enrolledGeneration !== null && m.enrolledGeneration === m.installGeneration;
}

/** One enrollment per install: while this is true, another enroll is a conflict, never a credential. */
export function hasLiveEnrollment(m: InstallView): boolean {
  return liveStates.includes(m.state) && enrolledThisInstall(m);
}

/** The current install is over: the installer reported success or the machine enrolled. */
export function installDone(m: InstallView): boolean {
  return m.installedAt !== null || enrolledThisInstall(m);
}

/**
 * An approval that would otherwise change nothing: the machine's enrollment was revoked (reject,
 * retire, seat taken back) and its install is over, so only a new install can enroll it again.
 * Approving it reopens the install (a new install generation).
 */
export function approvalReopensInstall(m: InstallView): boolean {
  return !enrolledThisInstall(m) && m.installedAt !== null;
}

/** Names of the Ubuntu installer's webhook events whose SUCCESS `finish` means the disk is installed and bootable. */
export const finalInstallerEvents: readonly string[] = ["subiquity/Install/install", "subiquity/Shutdown/copy_logs_to_target", "subiquity/Shutdown/shutdown"];

/** Whether an installer webhook event says the install is done (its final `finish`, result SUCCESS). */
export function isFinalInstallerEvent(e: { name: string; event_type: string; result?: string | undefined }): boolean {
  return e.event_type === "finish" && e.result === "SUCCESS" && finalInstallerEvents.includes(e.name);
}

/** What an unresolved conflict looks like to the rules: any recorded, not yet dismissed. */
export type ConflictView = { conflicts: readonly unknown[] };

/**
 * Whether a machine carries an unresolved conflict (a refused second enrollment). Such a machine
 * gets no k3s secrets and no policy (pre-registration, auto-approve rule) may ever approve it:
 * only an admin does, with `dismiss_conflicts: true`, or rejects or reinstalls it.
 */
export function hasUnresolvedConflict(m: ConflictView): boolean {
  return m.conflicts.length > 0;
}

/** What `/boot.ipxe` answers a machine in this state. */
export type BootAnswer = "install" | "local_disk" | "rejected" | "retired" | "wait_for_approval";

/** When a cluster wipes and installs an unknown machine: at once (the default), or only once it is approved. */
export type InstallPolicy = "immediate" | "after_approval";

/**
 * The boot gate. The installer runs once per install: only a machine that never enrolled and
 * never reported a finished install, a `failed` one, and one an admin asked to reinstall get it;
 * once the installer reports success or the machine enrolls, every later PXE boot is its local
 * disk, whatever a LAN client sends. Turned-away machines get a message; in an `after_approval`
 * cluster a machine nobody approved yet waits at a screen that asks again.
 */
export function bootAnswer(m: InstallView, installPolicy: InstallPolicy = "immediate"): BootAnswer {
  switch (m.state) {
    case "rejected":
      return "rejected";
    case "retired":
      return "retired";
    case "joined":
      return "local_disk";
    case "failed":
      return "install";
    default:
      break;
  }
  if (installDone(m)) return "local_disk";
  if (installPolicy === "after_approval" && (m.state === "discovered" || m.state === "pending")) return "wait_for_approval";
  return "install";
}

/**
 * The seed gate: PXE cannot authenticate anyone, so a bootstrap token goes only where an install
 * may run: never to a machine an admin turned away, nor to one whose install is over (a joined
 * machine gets none until an admin asks for its reinstall).
 */
export function seedCarriesAgent(m: InstallView): boolean {
  if (m.state === "rejected" || m.state === "retired") return false;
  return m.state === "failed" || !installDone(m);
}

/** Why an agent must stop for good; the error codes the node API answers with. */
export type StopCode = "machine_rejected" | "machine_retired" | "seat_revoked" | "invalid_state";

/** The join gate: what a machine with a valid node credential gets when it asks for its config. */
export type ConfigGate = { kind: "stop"; code: StopCode; message: string } | { kind: "wait"; reason: "pending_approval" | "conflict" } | { kind: "ask_quorum" };

/** The join gate's view: seat revocations, cluster membership and conflicts matter beside the state. */
export type ConfigGateView = LifecycleView & { seatRevokedAt: number | null; clusterId: number | null; conflicts?: readonly unknown[] };

/**
 * Whether a machine may ask the quorum for a seat and its config: turned-away machines stop,
 * waiting ones wait for a human, a failed one whose seat was taken back must be approved again.
 */
export function configGate(m: ConfigGateView): ConfigGate {
  const stopped = stopFor(m.state);
  if (stopped) return stopped;
  // No k3s secrets while a second enrollment of this machine waits for an admin's look.
  if (m.conflicts && hasUnresolvedConflict({ conflicts: m.conflicts })) return { kind: "wait", reason: "conflict" };
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
