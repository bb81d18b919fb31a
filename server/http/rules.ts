/**
 * `/api/v1/rules`: auto-approve rules. Every condition given must match; the most specific rule
 * wins, then the oldest; `limit` counts down with each approval. Disabled rules and used-up
 * limits stay listed. Admin only.
 */
import { Hono } from "hono";
import type { AppEnv } from "../context.js";
import type { ApprovalRuleRow } from "../../db/schema.js";
import { ruleCreate, rulePatch } from "../policy/spec.js";
import { createRule, deleteRule, listRules, updateRule } from "../store/policy.js";
import { adminActor, adminAuth } from "./middleware/admin-auth.js";
import { pageBody, pagedQuery, pageRequest } from "./middleware/pagination.js";
import { idParam, limitJsonBody, validate } from "./middleware/validate.js";

/** A rule as admins and scripts see it: `limit` is what it may still approve. */
function present(r: ApprovalRuleRow) {
  const match = {
    ...(r.matchCidr !== null ? { cidr: r.matchCidr } : {}),
    ...(r.matchManufacturer !== null ? { manufacturer: r.matchManufacturer } : {}),
    ...(r.matchProduct !== null ? { product: r.matchProduct } : {}),
    ...(r.matchSerialPrefix !== null ? { serial_prefix: r.matchSerialPrefix } : {}),
  };
  return {
    id: r.id,
    name: r.name,
    cluster_id: r.clusterId,
    match,
    role: r.role,
    limit: r.remaining,
    approved_count: r.approvedCount,
    enabled: r.enabled,
    // Why it approves nothing right now, if it does not: what an admin reading the list needs.
    status: !r.enabled ? "disabled" : r.remaining === 0 ? "exhausted" : "active",
    created_at: new Date(r.createdAt).toISOString(),
    updated_at: new Date(r.updatedAt).toISOString(),
  };
}

const audit = (c: { var: AppEnv["Variables"] }, actor: string) => ({ actor, sourceIp: c.var.sourceIp, now: c.var.deps.clock() });

/** `/api/v1/rules` routes, admin only. */
export const ruleRoutes = new Hono<AppEnv>()
  .get("/api/v1/rules", adminAuth, validate("query", pagedQuery({})), (c) => {
    return c.json(pageBody("rules", listRules(c.var.deps.db, pageRequest(c.req.valid("query"))), present));
  })
  .post("/api/v1/rules", limitJsonBody, adminAuth, validate("json", ruleCreate), (c) => {
    return c.json(present(createRule(c.var.deps.db, c.req.valid("json"), audit(c, adminActor(c)))), 201);
  })
  .patch("/api/v1/rules/:id", limitJsonBody, adminAuth, validate("param", idParam), validate("json", rulePatch), (c) => {
    return c.json(present(updateRule(c.var.deps.db, c.req.valid("param").id, c.req.valid("json"), audit(c, adminActor(c)))));
  })
  .delete("/api/v1/rules/:id", adminAuth, validate("param", idParam), (c) => {
    return c.json(present(deleteRule(c.var.deps.db, c.req.valid("param").id, audit(c, adminActor(c)))));
  });
