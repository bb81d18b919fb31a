/**
 * createApp(deps): the one place that lists middleware order and mounts one sub-app per concern.
 * protocol servers (HTTP, TFTP) → handlers → store transactions → pure core rules.
 */
import { randomUUID } from "node:crypto";
import { isIPv4 } from "node:net";
import { Hono } from "hono";
import { getConnInfo } from "@hono/node-server/conninfo";
import pino, { type Logger } from "pino";
import type { Db } from "../db/client.js";
import type { Config } from "./config.js";
import type { AppEnv, Clock, Deps } from "./context.js";
import { ApiError } from "./errors.js";
import { handleError } from "./http/error-handler.js";
import { observe } from "./http/middleware/observe.js";
import { createMetrics } from "./metrics/registry.js";
import { countMachines, countReadyServers } from "./store/fleet.js";
import { requireTls } from "./http/middleware/require-tls.js";
import { bootRoutes } from "./http/boot.js";
import { healthRoutes } from "./http/health.js";
import { metricsRoutes } from "./http/metrics.js";
import { uiRoutes } from "./http/ui/index.js";
import { openApiRoutes } from "./http/openapi/index.js";
import { wellKnownRoutes } from "./http/well-known.js";
import { enrollRoutes } from "./http/enroll.js";
import { nodeRoutes } from "./http/node.js";
import { adminRoutes } from "./http/admin.js";
import { clusterRoutes } from "./http/clusters.js";
import { machineRoutes } from "./http/machines.js";
import { ruleRoutes } from "./http/rules.js";
import { explainRoutes } from "./http/explain.js";
import { eventRoutes } from "./http/events.js";
import { tokenRoutes } from "./http/tokens.js";
import { backupRoutes } from "./http/backup.js";
import { timelineRoutes } from "./http/timeline.js";
import { kubeconfigRoutes } from "./http/kubeconfig.js";
import { recordActivity } from "./http/middleware/record-activity.js";
import { IpxeRenderer } from "./render/ipxe.js";
import { TemplateSet } from "./render/templates.js";
import { CloudInitRenderer } from "./render/cloud-init.js";
import { cloudInitRoutes } from "./http/cloud-init.js";
import { installProgressRoutes } from "./http/install-progress.js";
import { artifactsRoutes } from "./http/artifacts.js";
import { ipxeBinaryRoutes } from "./http/ipxe-binaries.js";
import { syslogRoutes } from "./http/syslog.js";
import { Keyring } from "./enrollment/keyring.js";
import { Artifacts } from "./files/artifacts.js";
import { hashAdminToken } from "./store/admin-token.js";
import { newestLeaseStart } from "./store/reform.js";
import { flushDeferred } from "./store/deferred.js";
import { leaseClockAnchor, leaseClockFrom } from "./quorum/lease-clock.js";
import { AnonymousLimits, type AnonymousLimitRules } from "./rate-limit.js";

/** Everything createApp needs; renderers are derived from the config unless given. */
export type AppInput = {
  db: Db;
  config: Config;
  clock?: Clock;
  logger?: Logger;
  /** main passes the persisted ring; tests get a freshly generated one. */
  keyring?: Keyring;
  /** The CA certificate of the node API's HTTPS listener (`server/tls/ca.ts`). */
  caCertPem: string;
  /** SHA-256 of EDGEJOIN_ADMIN_TOKEN (the `env` token); derived from config.adminToken when left out. */
  adminTokenHash?: Buffer;
  /** Quorum leases are measured on this; a test's `clock` when given, else monotonic (`quorum/lease-clock.ts`). */
  leaseClock?: Clock;
  /** Tighter or looser bounds on anonymous storage, for tests. */
  anonymousLimits?: Partial<AnonymousLimitRules>;
};

/** iPXE's `syslog` takes an IPv4 address and always sends to UDP 514: set it only when both hold. */
function ipxeSyslogHost(config: Config): string | undefined {
  const host = new URL(config.publicUrl).hostname;
  return config.syslogPort === 514 && isIPv4(host) ? host : undefined;
}

/** A machine's boot or seed fetch: the storm's hot paths, which only add to what is deferred. */
const isMachineFetch = (path: string) => path === "/boot.ipxe" || path.startsWith("/cloud-init/");

/** Build the full dependency set from the few things a caller must decide. */
export function makeDeps(input: AppInput): Deps {
  const templates = new TemplateSet(input.config.templatesDir);
  const clock = input.clock ?? Date.now;
  return {
    db: input.db,
    config: input.config,
    clock,
    logger: input.logger ?? pino({ level: "silent" }),
    templates,
    ipxe: new IpxeRenderer(templates, input.config.publicUrl, ipxeSyslogHost(input.config)),
    cloudInit: new CloudInitRenderer(templates),
    artifacts: new Artifacts(input.config.artifactsDir, input.config.publicUrl),
    keyring: input.keyring ?? Keyring.generate(clock()),
    leaseClock: input.leaseClock ?? input.clock ?? leaseClockFrom(leaseClockAnchor(Date.now(), newestLeaseStart(input.db))),
    limits: new AnonymousLimits(input.anonymousLimits),
    metrics: createMetrics(),
    caCertPem: input.caCertPem,
    adminTokenHash: input.adminTokenHash ?? (input.config.adminToken ? hashAdminToken(input.config.adminToken) : undefined),
  };
}

/** The HTTP application. Tests call `app.request()` on it; `main` serves it. */
export function createApp(input: AppInput | Deps) {
  const deps = "ipxe" in input ? input : makeDeps(input);
  const app = new Hono<AppEnv>();
  deps.metrics.setFleetReader(() => ({ machines: countMachines(deps.db), serversReady: countReadyServers(deps.db) }));

  app.use(async (c, next) => {
    c.set("deps", deps);
    c.set(
      "requestId",
      c.req
        .header("x-request-id")
        ?.slice(0, 64)
        .replace(/[^A-Za-z0-9._-]/g, "") || randomUUID(),
    );
    let ip = "";
    try {
      ip = getConnInfo(c).remote.address ?? "";
    } catch {
      // app.request() in tests has no socket.
    }
    c.set("sourceIp", ip.replace(/^::ffff:/, ""));
    // Timeline lines and last sightings trail the boot and seed fetches that made them
    // (store/deferred.ts); any other request may read them, so they are written first.
    if (!isMachineFetch(c.req.path)) flushDeferred(deps.db);
    await next();
  });
  // The request log line (with the client address, which ties a request to a machine through its
  // DHCP lease), HTTP metrics, and the audit log's events as log lines.
  app.use(observe(deps));

  // Enroll answers a credential and node routes carry one: neither may cross plain HTTP.
  app.use("/api/v1/enroll", requireTls);
  app.use("/api/v1/node/*", requireTls);
  // What a machine fetched goes into its timeline (GET /api/v1/nodes/:id/timeline).
  app.use("/boot.ipxe", recordActivity);
  app.use("/cloud-init/*", recordActivity);
  app.use("/api/v1/node/config", recordActivity);

  app.route("/", healthRoutes);
  app.route("/", metricsRoutes);
  app.route("/", uiRoutes);
  // Read lazily: every route mounted here, before or after it, is in the document.
  app.route(
    "/",
    openApiRoutes(() => app.routes),
  );
  app.route("/", bootRoutes);
  app.route("/", cloudInitRoutes);
  app.route("/", installProgressRoutes);
  app.route("/", artifactsRoutes);
  app.route("/", ipxeBinaryRoutes);
  app.route("/", syslogRoutes);
  app.route("/", wellKnownRoutes);
  app.route("/", enrollRoutes);
  app.route("/", nodeRoutes);
  app.route("/", adminRoutes);
  app.route("/", clusterRoutes);
  app.route("/", machineRoutes);
  app.route("/", ruleRoutes);
  app.route("/", explainRoutes);
  app.route("/", eventRoutes);
  app.route("/", tokenRoutes);
  app.route("/", backupRoutes);
  app.route("/", timelineRoutes);
  app.route("/", kubeconfigRoutes);

  app.notFound(() => {
    throw new ApiError("not_found", "no such route");
  });
  app.onError(handleError);
  return app;
}
