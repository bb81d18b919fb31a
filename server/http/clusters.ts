/**
 * Clusters admin API: create, list, get, change, and who holds which quorum seat. Admin only.
 * The k3s tokens are made at creation and never leave edgejoin through this API.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Hono } from "hono";
import type { AppEnv, Deps } from "../context.js";
import { ApiError } from "../errors.js";
import { clusterCreate, clusterPatch, type ClusterPatch } from "../clusters/spec.js";
import { checkArtifacts, neededArtifacts, type ArtifactReport } from "../clusters/artifacts.js";
import {
  clusterArches,
  createCluster,
  defaultInstaller,
  getCluster,
  listClustersPage,
  updateCluster,
  type ClusterFields,
  type ClusterRow,
} from "../store/clusters.js";
import { warnUnservedAtMirror } from "../net/reachable.js";
import { getQuorum } from "../store/quorum.js";
import { reformCluster } from "../store/reform.js";
import { adminActor, adminAuth } from "./middleware/admin-auth.js";
import { pageBody, pagedQuery, pageRequest } from "./middleware/pagination.js";
import { idParam, limitJsonBody, validate } from "./middleware/validate.js";

/** A cluster as the API shows it: snake_case, no secrets. */
function present(c: ClusterRow) {
  return {
    id: c.id,
    name: c.name,
    servers: c.servers,
    registration_address: c.registrationAddress,
    k3s_version: c.k3sVersion,
    is_default: c.isDefault,
    installer: c.installer,
    labels: c.labels,
    taints: c.taints,
    hostname_pattern: c.hostnamePattern,
    match_cidrs: c.matchCidrs,
    user_data_template: c.userDataTemplate,
    install_policy: c.installPolicy,
    registries: c.registries,
    ca_hash: c.caHash,
    // When the init server handed in the admin kubeconfig (GET .../kubeconfig); never the file itself here.
    kubeconfig_at: c.kubeconfigAt === null ? null : new Date(c.kubeconfigAt).toISOString(),
    created_at: new Date(c.createdAt).toISOString(),
    updated_at: new Date(c.updatedAt).toISOString(),
  };
}

function toFields(p: ClusterPatch): Partial<ClusterFields> {
  const f: Partial<ClusterFields> = {};
  if (p.name !== undefined) f.name = p.name;
  if (p.servers !== undefined) f.servers = p.servers;
  if (p.registration_address !== undefined) f.registrationAddress = p.registration_address;
  if (p.k3s_version !== undefined) f.k3sVersion = p.k3s_version;
  if (p.is_default !== undefined) f.isDefault = p.is_default;
  if (p.installer !== undefined) f.installer = p.installer;
  if (p.labels !== undefined) f.labels = p.labels;
  if (p.taints !== undefined) f.taints = p.taints;
  if (p.hostname_pattern !== undefined) f.hostnamePattern = p.hostname_pattern;
  if (p.match_cidrs !== undefined) f.matchCidrs = p.match_cidrs;
  if (p.user_data_template !== undefined) f.userDataTemplate = p.user_data_template;
  if (p.install_policy !== undefined) f.installPolicy = p.install_policy;
  if (p.registries !== undefined) f.registries = p.registries;
  return f;
}

/** A cluster's own user-data template must exist now, not fail at the first machine's boot. */
function requireTemplate(templatesDir: string, path: string | null | undefined): void {
  if (!path) return;
  if (!existsSync(join(templatesDir, `${path}.mustache`))) {
    throw new ApiError("validation_failed", `user_data_template: there is no ${path}.mustache in the templates folder`);
  }
}

/** Which files under /artifacts/ the cluster needs for its version and its machines' architectures, and which are missing. */
function artifactReport(deps: Deps, row: ClusterRow): ArtifactReport {
  return checkArtifacts(neededArtifacts(row, clusterArches(deps.db, row.id)), (p) => deps.artifacts.has(p), row.installer.mirror_url);
}

/** Say at once, in the log, what a created or changed cluster still lacks: the exact paths to fill. */
function warnMissing(deps: Deps, row: ClusterRow): void {
  const { missing, mirrored } = artifactReport(deps, row);
  const mirrorUrl = row.installer.mirror_url;
  if (mirrored.length > 0 && mirrorUrl && deps.probeUrl) void warnUnservedAtMirror(deps.logger, { name: row.name, mirrorUrl }, mirrored, deps.probeUrl);
  if (missing.length > 0) {
    deps.logger.warn(
      { cluster: row.name, missing, artifactsDir: deps.config.artifactsDir },
      `cluster ${row.name} lacks files in the artifacts folder: ${missing.join(", ")}`,
    );
  }
}

/** k3s's supervisor and API port: what joining machines are pointed at (`server: https://REG:6443`). */
const K3S_API_PORT = 6443;

/**
 * What an admin should know about a cluster as it stands, shown with it on create, change and
 * read: a registration address nothing answers on yet (a VIP that kube-vip does not hold; a DNS
 * name is not checked: see server/net/reachable.ts). The cluster is accepted all the same: the
 * address may come up later.
 */
async function clusterWarnings(deps: Deps, row: ClusterRow): Promise<{ code: string; message: string }[]> {
  const address = row.registrationAddress;
  if (!address || !deps.probeTcp || (await deps.probeTcp(address, K3S_API_PORT)) !== false) return [];
  return [
    {
      code: "registration_address_unserved",
      message: `nothing answers on ${address}:${K3S_API_PORT} yet: joining servers and agents are pointed there and cannot join until it does (a VIP needs kube-vip or a load balancer in front of the servers; README: "Making a registration address real")`,
    },
  ];
}

/** `/api/v1/clusters` routes, admin only. */
export const clusterRoutes = new Hono<AppEnv>()
  .get("/api/v1/clusters", adminAuth, validate("query", pagedQuery({})), (c) =>
    c.json(pageBody("clusters", listClustersPage(c.var.deps.db, pageRequest(c.req.valid("query"))), present)),
  )
  .post("/api/v1/clusters", limitJsonBody, adminAuth, validate("json", clusterCreate), async (c) => {
    const { db, clock, config } = c.var.deps;
    const body = c.req.valid("json");
    requireTemplate(config.templatesDir, body.user_data_template);
    const row = createCluster(
      db,
      {
        name: body.name,
        servers: body.servers,
        registrationAddress: body.registration_address,
        k3sVersion: body.k3s_version ?? config.k3sVersion,
        isDefault: body.is_default,
        installer: body.installer ?? defaultInstaller,
        labels: body.labels,
        taints: body.taints,
        hostnamePattern: body.hostname_pattern,
        matchCidrs: body.match_cidrs,
        userDataTemplate: body.user_data_template,
        installPolicy: body.install_policy,
        registries: body.registries,
      },
      { now: clock(), actor: adminActor(c), sourceIp: c.var.sourceIp || null },
    );
    warnMissing(c.var.deps, row);
    return c.json({ ...present(row), warnings: await clusterWarnings(c.var.deps, row) }, 201);
  })
  .get("/api/v1/clusters/:id", adminAuth, validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const row = getCluster(c.var.deps.db, id);
    if (!row) throw new ApiError("not_found", `no cluster ${id}`);
    return c.json({ ...present(row), artifacts: artifactReport(c.var.deps, row), warnings: await clusterWarnings(c.var.deps, row) });
  })
  .patch("/api/v1/clusters/:id", limitJsonBody, adminAuth, validate("param", idParam), validate("json", clusterPatch), async (c) => {
    const { db, clock, config } = c.var.deps;
    const { id } = c.req.valid("param");
    const change = toFields(c.req.valid("json"));
    requireTemplate(config.templatesDir, change.userDataTemplate);
    const row = updateCluster(db, id, change, { now: clock(), actor: adminActor(c), sourceIp: c.var.sourceIp || null });
    warnMissing(c.var.deps, row);
    return c.json({ ...present(row), warnings: await clusterWarnings(c.var.deps, row) });
  })
  .get("/api/v1/clusters/:id/quorum", adminAuth, validate("param", idParam), (c) => {
    const { id } = c.req.valid("param");
    const { db, clock, config } = c.var.deps;
    return c.json(getQuorum(db, id, { now: clock(), leaseNow: c.var.deps.leaseClock(), leaseMs: config.roleLeaseMs }));
  })
  .post("/api/v1/clusters/:id/reform", adminAuth, validate("param", idParam), (c) => {
    // A cluster that lost every server: the next approved machine becomes its init. Refused while any server holds a seat.
    const { id } = c.req.valid("param");
    const { db, clock } = c.var.deps;
    return c.json(present(reformCluster(db, id, { now: clock(), actor: adminActor(c), sourceIp: c.var.sourceIp || null })));
  });
