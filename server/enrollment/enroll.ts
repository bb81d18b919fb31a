/**
 * The enrollment rules, over plain records: what a machine may send, whether a verified
 * bootstrap token and the machine we know agree, and which state enrolling leads to.
 * Pure: zod only; the store applies the decision inside one transaction.
 */
import { z } from "zod";
import { hasLiveEnrollment, next, type InstallView, type MachineState } from "../lifecycle/machine.js";
import { ipxeWord, macText, smbiosText, uuidText } from "../identity.js";
import type { BootstrapClaims } from "./tokens.js";

const disk = z.object({
  name: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, "a device name such as sda or nvme0n1"),
  size_bytes: z.number().int().nonnegative(),
  model: smbiosText.optional(),
  serial: smbiosText.optional(),
  rotational: z.boolean().optional(),
});

/** How deep and how large the facts an agent sends may be: stored as JSON, shown to admins, kept in conflicts. */
export const factsLimits = { depth: 8, bytes: 16 * 1024 } as const;

/** Depth of a parsed JSON value, walked without recursion (a 30,000-deep body must not overflow the stack). */
export function jsonDepth(value: unknown, stopAt = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth > deepest) deepest = depth;
    if (deepest > stopAt) return deepest;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/**
 * Hardware facts the agent reports. The named ones are typed because admins and policies rely on
 * them; other keys are kept as sent, bounded in depth and size (`factsLimits`).
 */
export const machineFacts = z
  .object({
    cpu_count: z.number().int().min(1).max(65_536).optional(),
    memory_bytes: z.number().int().nonnegative().optional(),
    disks: z.array(disk).max(128).optional(),
    manufacturer: smbiosText.optional(),
    product: smbiosText.optional(),
  })
  .catchall(z.unknown())
  .superRefine((facts, ctx) => {
    if (jsonDepth(facts, factsLimits.depth) > factsLimits.depth) {
      ctx.addIssue({ code: "custom", message: `facts may nest at most ${factsLimits.depth} levels deep` });
      return;
    }
    if (Buffer.byteLength(JSON.stringify(facts)) > factsLimits.bytes) {
      ctx.addIssue({ code: "custom", message: `facts may be at most ${factsLimits.bytes / 1024} KiB as JSON` });
    }
  });

/** Reported hostnames are facts (the node name is decided at approval), so only sanity-checked. */
const reportedHostname = z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})?$/, "hostname must be letters, digits, '.' and '-'");

/** `POST /api/v1/enroll` body. Identity fields are normalized exactly as boot requests are. */
export const enrollRequest = z
  .object({
    token: z.string().min(1).max(4096),
    mac: macText,
    uuid: z.union([z.literal(""), uuidText]).optional(),
    serial: smbiosText.optional(),
    hostname: reportedHostname.optional(),
    ip: z.union([z.ipv4(), z.ipv6()]).optional(),
    arch: z.union([z.literal(""), ipxeWord]).optional(),
    facts: machineFacts.optional(),
  })
  .strict();

/** A validated enroll body. */
export type EnrollRequest = z.output<typeof enrollRequest>;

/** The machine as enrollment needs to see it. */
export type KnownMachine = InstallView & {
  id: number;
  mac: string;
  uuid: string | null;
  serial: string | null;
  state: MachineState;
  clusterId: number | null;
  /** Approved from `discovered`, before it installed: its first enroll keeps the approval. */
  approvedBeforeEnroll?: boolean;
};

// Firmware that never had SMBIOS filled in reports these; they identify nothing and must neither
// trigger nor hide an identity conflict.
const placeholderUuids = new Set(["00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", "03000200-0400-0500-0006-000700080009"]);
const placeholderSerials =
  /^(|0+|none|n\/a|na|default string|to be filled by o\.e\.m\.|not specified|not applicable|system serial number|chassis serial number|123456789|serial)$/i;

/** A UUID that actually identifies a machine, or undefined for empty and well-known placeholders. */
export function meaningfulUuid(uuid: string | null | undefined): string | undefined {
  const u = uuid?.trim().toLowerCase();
  return u && !placeholderUuids.has(u) ? u : undefined;
}

/** A serial that actually identifies a machine, or undefined for empty and vendor placeholders. */
export function meaningfulSerial(serial: string | null | undefined): string | undefined {
  const s = serial?.trim();
  return s && !placeholderSerials.test(s) ? s : undefined;
}

/** Why an otherwise valid enroll is refused (codes match server/errors.ts). */
export type EnrollRefusal = {
  code: "mac_mismatch" | "cluster_mismatch" | "identity_conflict" | "machine_rejected" | "machine_retired";
  message: string;
  detail: Record<string, unknown>;
};

/** What enrolling does to the machine. */
export type EnrollDecision =
  | { kind: "refuse"; refusal: EnrollRefusal }
  /** One enrollment per install: refused with `409 already_enrolled`, recorded on the machine as a conflict, nothing else changes. */
  | { kind: "conflict"; message: string }
  | { kind: "enroll"; clusterId: number; nextState: MachineState; stateChanged: boolean; revokeCredentials: boolean };

/**
 * Decide an enroll whose token already verified. `machine` is the row with the body's MAC, if
 * any; `tokenClusterExists` says whether the token's cluster is still there; `preApproved` is
 * true when a pre-registration (or auto-approve policy) matches the machine.
 */
export function decideEnrollment(o: {
  claims: BootstrapClaims;
  request: Pick<EnrollRequest, "mac" | "uuid" | "serial">;
  machine: KnownMachine | undefined;
  tokenClusterExists: boolean;
  preApproved: boolean;
}): EnrollDecision {
  const { claims, request, machine } = o;
  if (claims.mac !== request.mac) {
    return {
      kind: "refuse",
      refusal: { code: "mac_mismatch", message: "the bootstrap token was issued for another MAC address", detail: { token_mac: claims.mac } },
    };
  }
  const clusterId = machine?.clusterId ?? claims.clusterId;
  if (clusterId !== claims.clusterId || !o.tokenClusterExists) {
    return {
      kind: "refuse",
      refusal: {
        code: "cluster_mismatch",
        message: o.tokenClusterExists
          ? "the bootstrap token was issued for another cluster than this machine's"
          : "the bootstrap token's cluster no longer exists",
        detail: { token_cluster_id: claims.clusterId, machine_cluster_id: machine?.clusterId ?? null },
      },
    };
  }
  if (machine?.state === "rejected") {
    return {
      kind: "refuse",
      refusal: { code: "machine_rejected", message: "an admin rejected this machine; it enrolls again only after an admin approves it", detail: {} },
    };
  }
  if (machine?.state === "retired") {
    return {
      kind: "refuse",
      refusal: { code: "machine_retired", message: "this machine was retired; it enrolls again only after an admin approves it", detail: {} },
    };
  }
  if (machine && hasLiveEnrollment(machine)) {
    return {
      kind: "conflict",
      message: `machine ${machine.mac} already enrolled in its current install; this enroll was refused and recorded as a conflict for an admin to look at (nothing was issued or changed)`,
    };
  }
  // The identity to compare with is the one an earlier enrollment gave; before any, only
  // anonymous sightings spoke, and those are never trusted over the enrolling machine.
  if (machine && machine.enrolledGeneration !== null) {
    const conflicts: Record<string, { known: string; reported: string }> = {};
    const knownUuid = meaningfulUuid(machine.uuid);
    const sentUuid = meaningfulUuid(request.uuid);
    if (knownUuid && sentUuid && knownUuid !== sentUuid) conflicts.uuid = { known: knownUuid, reported: sentUuid };
    const knownSerial = meaningfulSerial(machine.serial);
    const sentSerial = meaningfulSerial(request.serial);
    if (knownSerial && sentSerial && knownSerial !== sentSerial) conflicts.serial = { known: knownSerial, reported: sentSerial };
    if (Object.keys(conflicts).length > 0) {
      return {
        kind: "refuse",
        refusal: {
          code: "identity_conflict",
          message: `MAC ${machine.mac} is known with a different ${Object.keys(conflicts).join(" and ")}: an admin must look at this machine`,
          detail: conflicts,
        },
      };
    }
  }
  // Roles play no part in enrollment's moves, so the lifecycle sees the state alone.
  const state = machine?.state ?? "discovered";
  // Approved before it installed (an `after_approval` cluster, or an admin who knew it), or
  // approved or reinstalled by an admin since its enrollment was revoked: the enroll this
  // install ends with is the one the decision was for. Only that one (it is live afterwards).
  if (state === "approved" && (machine?.approvedBeforeEnroll || machine?.enrolledGeneration !== machine?.installGeneration)) {
    return { kind: "enroll", clusterId, nextState: state, stateChanged: false, revokeCredentials: true };
  }
  if (state === "pending") return { kind: "enroll", clusterId, nextState: state, stateChanged: false, revokeCredentials: true };
  if (state === "discovered") {
    const first = next(o.preApproved ? "enroll_pre_approved" : "enroll", { state, role: null });
    if ("to" in first) return { kind: "enroll", clusterId, nextState: first.to, stateChanged: true, revokeCredentials: false };
  }
  // A failed machine that installed again enrolls as pending: its earlier credentials stop
  // working and an admin approves it again (a bootstrap token comes from an unauthenticated seed).
  const again = next("reenroll", { state, role: null });
  if ("to" in again) return { kind: "enroll", clusterId, nextState: again.to, stateChanged: true, revokeCredentials: true };
  // Provisioning or joined without a live enrollment does not happen (revocations move the state).
  return { kind: "conflict", message: `machine ${machine?.mac ?? request.mac} is ${state}; it enrolls again only after an admin's reinstall` };
}
