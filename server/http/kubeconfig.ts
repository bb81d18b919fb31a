/**
 * The cluster admin's kubeconfig: `PUT /api/v1/node/kubeconfig` (the init server's agent, with its
 * node credential, over HTTPS) hands it in after `ready`; `GET /api/v1/clusters/:id/kubeconfig`
 * (admin, audited) gives it out pointed at the registration address.
 */
import { Hono } from "hono";
import type { AppEnv } from "../context.js";
import { ApiError } from "../errors.js";
import { kubeconfigProblem, pointKubeconfigAt } from "../clusters/kubeconfig.js";
import { readKubeconfig, saveKubeconfig } from "../store/kubeconfig.js";
import { adminActor, adminAuth } from "./middleware/admin-auth.js";
import { nodeAuth } from "./middleware/node-auth.js";
import { idParam, limitJsonBody, validate } from "./middleware/validate.js";

const yamlTypes = /^(application\/(yaml|x-yaml)|text\/(yaml|x-yaml|plain))$/;

/** Kubeconfig routes: the node's upload and the admin's download. */
export const kubeconfigRoutes = new Hono<AppEnv>()
  .put("/api/v1/node/kubeconfig", limitJsonBody, nodeAuth, async (c) => {
    const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (!yamlTypes.test(type)) throw new ApiError("bad_request", "send the kubeconfig as the body, content-type: application/yaml");
    const text = await c.req.text();
    const problem = kubeconfigProblem(text);
    if (problem) throw new ApiError("validation_failed", `not a kubeconfig: ${problem}`);
    const { clusterId } = saveKubeconfig(c.var.deps.db, c.var.machine.id, text, { now: c.var.deps.clock(), sourceIp: c.var.sourceIp || null });
    c.var.deps.logger.info({ machineId: c.var.machine.id, clusterId }, "init server handed in the cluster's kubeconfig");
    return c.json({ cluster_id: clusterId, stored: true });
  })
  .get("/api/v1/clusters/:id/kubeconfig", adminAuth, validate("param", idParam), (c) => {
    const { db, clock } = c.var.deps;
    const stored = readKubeconfig(db, c.req.valid("param").id, { actor: adminActor(c), sourceIp: c.var.sourceIp || null, now: clock() });
    // It grants cluster-admin: no cache along the way may keep it.
    return c.body(pointKubeconfigAt(stored.text, { host: stored.host, name: stored.name }), 200, {
      "content-type": "application/yaml; charset=utf-8",
      "cache-control": "no-store",
    });
  });
