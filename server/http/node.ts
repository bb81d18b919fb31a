/**
 * The node agent's API, behind its node credential: `GET /api/v1/node/config` (wait, stop, or
 * the role's config) and `POST /api/v1/node/events` (progress reports).
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import type { AppEnv, MachineRow } from "../context.js";
import { ApiError } from "../errors.js";
import { getMachine } from "../store/machines.js";
import { recordAgentEvent } from "../store/nodes.js";
import { recordNodeEvent, resolveNodeConfig } from "../store/quorum.js";
import { nodeAuth } from "./middleware/node-auth.js";
import { limitJsonBody, validate } from "./middleware/validate.js";

/** Seconds an agent waits before asking again while a human decides. */
const pendingRetryAfter = 30;

function wait(c: Context<AppEnv>, state: MachineRow["state"], reason: string, retryAfter: number) {
  c.header("retry-after", String(retryAfter));
  return c.json({ state, reason, retry_after: retryAfter }, 202);
}

/** Refuse a machine an admin turned away; the agent stops on these codes. */
function refuseStopped(machine: MachineRow): void {
  if (machine.state === "rejected") throw new ApiError("machine_rejected", "an admin rejected this machine; the agent should stop");
  if (machine.state === "retired") throw new ApiError("machine_retired", "this machine was retired from its cluster; the agent should stop");
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
    refuseStopped(machine);
    if (machine.state === "discovered" || machine.state === "pending") return wait(c, machine.state, "pending_approval", pendingRetryAfter);
    const decision = resolveNodeConfig(c.var.deps, machine);
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
    refuseStopped(machine);
    const body = c.req.valid("json");
    const { db, clock, logger } = c.var.deps;
    const event = recordAgentEvent(db, machine.id, { type: body.type, detail: body.detail, caHash: body.ca_hash }, clock());
    logger.info({ machineId: machine.id, type: event.type }, "node event");
    // The quorum applies k3s-started/ready/failed to the seat; a report from a revoked seat is flagged and refused (403).
    recordNodeEvent(c.var.deps, machine, { type: body.type, detail: body.detail, caHash: body.ca_hash });
    return c.json({ id: event.id, type: event.type }, 202);
  });
