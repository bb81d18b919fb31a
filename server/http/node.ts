/**
 * The node agent's API, behind its node credential: `GET /api/v1/node/config` (wait, stop, or
 * the role's config) and `POST /api/v1/node/events` (progress reports).
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import type { AppEnv, Deps, MachineRow } from "../context.js";
import { ApiError } from "../errors.js";
import { eventGate } from "../lifecycle/machine.js";
import { renderNodeConfig, type NodeConfigBody } from "../quorum/node-config.js";
import type { WaitReason } from "../quorum/seats.js";
import { getMachine } from "../store/machines.js";
import { claimSeat, recordNodeEvent } from "../store/quorum.js";
import { nodeAuth } from "./middleware/node-auth.js";
import { limitJsonBody, validate } from "./middleware/validate.js";

/** What a config request gets: wait (202) or the config (200). */
export type NodeConfigDecision =
  | { kind: "wait"; reason: WaitReason | "pending_approval" | "conflict"; retryAfter: number }
  | { kind: "config"; body: NodeConfigBody };

/** The credential a node request carried and where it came from: the store checks it again inside its transaction. */
export type NodeRequestFrom = { generation: number; sourceIp?: string | undefined };

const quorumClock = (deps: Deps) => ({ now: deps.clock(), leaseNow: deps.leaseClock(), leaseMs: deps.config.roleLeaseMs });

/** A config request of a machine with a valid credential: the quorum gives or keeps its seat, then its config is rendered. */
export function answerConfigRequest(deps: Deps, machine: Pick<MachineRow, "id">, from?: NodeRequestFrom): NodeConfigDecision {
  const answer = claimSeat(deps.db, machine.id, quorumClock(deps), from);
  if (answer.kind === "wait") return answer;
  const { publicUrl, syslogPort } = deps.config;
  const syslog = syslogPort === undefined ? null : `${new URL(publicUrl).hostname}:${syslogPort}`;
  return { kind: "config", body: renderNodeConfig({ ...answer, artifacts: deps.artifacts, syslog }) };
}

/** A progress report from a machine's agent, applied to its seat; the stored event comes back. */
export function answerNodeEvent(
  deps: Deps,
  machine: Pick<MachineRow, "id">,
  event: { type: string; detail?: string | undefined; caHash?: string | null | undefined },
  from?: NodeRequestFrom,
) {
  try {
    return recordNodeEvent(deps.db, machine.id, event, quorumClock(deps), from);
  } catch (err) {
    const flagged = err instanceof ApiError && (err.details as { split_brain_risk?: { why: string } } | undefined)?.split_brain_risk;
    if (flagged) deps.logger.error({ machineId: machine.id, ...flagged }, `SPLIT BRAIN RISK: ${flagged.why}`);
    throw err;
  }
}

function wait(c: Context<AppEnv>, state: MachineRow["state"], reason: string, retryAfter: number) {
  c.header("retry-after", String(retryAfter));
  return c.json({ state, reason, retry_after: retryAfter }, 202);
}

const nodeEvent = z
  .object({
    type: z.enum(["installing", "k3s-started", "ready", "failed"]),
    detail: z.string().max(4096).optional(),
    ca_hash: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, "ca_hash must be the hex SHA-256 of the server CA certificate")
      .transform((v) => v.toLowerCase())
      .optional(),
  })
  .strict();

export const nodeRoutes = new Hono<AppEnv>()
  .get("/api/v1/node/config", nodeAuth, (c) => {
    const machine = c.var.machine;
    const decision = answerConfigRequest(c.var.deps, machine, { generation: c.var.credentialGeneration, sourceIp: c.var.sourceIp });
    // Debug only: agents poll; this ties each poll to its machine whatever address it comes from.
    c.var.deps.logger.debug({ machineId: machine.id, answer: decision.kind === "wait" ? decision.reason : "config" }, "node config");
    if (decision.kind === "wait") {
      // The quorum may have moved the machine (e.g. approved → provisioning) while deciding.
      const now = getMachine(c.var.deps.db, machine.id)?.state ?? machine.state;
      return wait(c, now, decision.reason, decision.retryAfter);
    }
    // The body carries the k3s tokens: no cache along the way may keep it.
    c.header("cache-control", "no-store");
    return c.json(decision.body, 200);
  })
  .post("/api/v1/node/events", limitJsonBody, nodeAuth, validate("json", nodeEvent), (c) => {
    const machine = c.var.machine;
    const stop = eventGate(machine.state);
    if (stop) throw new ApiError(stop.code, stop.message);
    const body = c.req.valid("json");
    const event = answerNodeEvent(
      c.var.deps,
      machine,
      { type: body.type, detail: body.detail, caHash: body.ca_hash },
      { generation: c.var.credentialGeneration, sourceIp: c.var.sourceIp },
    );
    c.var.deps.logger.info({ machineId: machine.id, type: event.type }, "node event");
    return c.json({ id: event.id, type: event.type }, 202);
  });
