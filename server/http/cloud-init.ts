/**
 * NoCloud seed: `GET /cloud-init/:mac/{meta-data,user-data,vendor-data,network-config}`, with or
 * without a trailing slash (query strings some images append are ignored). Selection lives in
 * `selectSeedMachine`; the documents are rendered by `CloudInitRenderer`.
 */
import { Hono, type Context } from "hono";
import type { AppEnv } from "../context.js";
import { issueBootstrapToken } from "../enrollment/tokens.js";
import { ApiError } from "../errors.js";
import { logUploadCommand, type MachineValues, userDataTemplatePath } from "../render/cloud-init.js";
import { seedCarriesAgent } from "../lifecycle/machine.js";
import { getCluster } from "../store/clusters.js";
import { assignHostname } from "../store/machines.js";
import { progressTokenFor } from "../store/install-progress.js";
import { selectSeedMachine } from "./middleware/select-seed-machine.js";

const yamlHeaders = { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" };
const seedFiles = new Set(["meta-data", "user-data", "vendor-data", "network-config"]);

/** A cluster's own template, checked again here: the stored path must not leave the templates folder. */
function clusterTemplate(path: string | null): string | undefined {
  if (!path) return undefined;
  const parsed = userDataTemplatePath.safeParse(path);
  if (!parsed.success) throw new ApiError("internal", "the cluster's user_data_template must be a relative path inside the templates folder");
  return parsed.data;
}

async function userData(c: Context<AppEnv>): Promise<string> {
  const { db, clock, config, keyring, cloudInit } = c.get("deps");
  const m = c.get("machine");
  // PXE cannot authenticate anyone: a machine an admin turned away gets nothing to enroll with.
  // Nor does a machine whose install is over: a joined machine gets no token until an admin's reinstall.
  if (!seedCarriesAgent(m)) return cloudInit.inert();
  const cluster = m.clusterId === null ? undefined : getCluster(db, m.clusterId);
  if (!cluster) throw new ApiError("invalid_state", `machine ${m.mac} belongs to no cluster: create a default cluster, then reboot it`);
  const now = clock();
  const hostname = assignHostname(db, m.id, cluster, now);
  const { token } = await issueBootstrapToken(keyring, { issuer: config.publicUrl, mac: m.mac, clusterId: cluster.id, now, ttlMs: config.tokenTtlMs });
  const agent = cloudInit.agentFiles();
  const installer = cluster.installer;
  const sshAuthorizedKeys = installer.ssh_authorized_keys ?? [];
  // One token per install: a later seed fetch (a neighbour's, or a retry) hands out the same one.
  const values = { hostname, mac: m.mac, bootstrapToken: token, progressToken: progressTokenFor(db, m) };
  const common = (v: MachineValues) => ({
    hostname: v.hostname,
    mac: v.mac,
    // The agent talks to the node API over HTTPS only, trusting edgejoin's CA and nothing else.
    nodeUrl: config.nodeUrl,
    caCert: c.get("deps").caCertPem,
    bootstrapToken: v.bootstrapToken,
    agentScript: agent.script,
    agentUnit: agent.unit,
    sshAuthorizedKeys,
    hasSshAuthorizedKeys: sshAuthorizedKeys.length > 0,
  });
  const template = clusterTemplate(cluster.userDataTemplate);
  if (installer.kind === "cloud-image") return cloudInit.cloudImageFor(values, common, template);
  return cloudInit.autoinstallFor(
    values,
    (v) => {
      // The token rides in the query: the request log records paths only.
      const progress = `${config.publicUrl}/install-progress/${v.macHex}`;
      const progressToken = encodeURIComponent(v.progressToken);
      return {
        ...common(v),
        adminUser: installer.admin_user ?? "edgejoin",
        // "!" is a locked password: the admin user logs in with an SSH key only.
        passwordHash: installer.password_hash ?? "!",
        allowPasswordLogin: Boolean(installer.password_hash),
        storageLayout: installer.storage_layout ?? "direct",
        progressUrl: `${progress}?token=${progressToken}`,
        logUploadCommand: logUploadCommand(`${progress}/log?token=${progressToken}`),
        installerSyslog: installerSyslog(config),
      };
    },
    template,
  );
}

/** Where Ubuntu's installer sends its events as syslog (rsyslog's `@HOST:PORT`, UDP): edgejoin's receiver, when it runs. */
function installerSyslog(config: { publicUrl: string; syslogPort: number | undefined }): string | null {
  if (config.syslogPort === undefined) return null;
  const host = new URL(config.publicUrl).hostname;
  // An IPv6 literal would need brackets rsyslog's legacy syntax does not take: no reporter then.
  return /^[A-Za-z0-9.-]+$/.test(host) ? `@${host}:${config.syslogPort}` : null;
}

async function seedFile(c: Context<AppEnv>) {
  const { db, clock, cloudInit } = c.get("deps");
  const m = c.get("machine");
  switch (c.req.param("file")) {
    case "meta-data": {
      const cluster = m.clusterId === null ? undefined : getCluster(db, m.clusterId);
      const hostname = assignHostname(db, m.id, cluster, clock());
      return c.body(cloudInit.metaData({ instanceId: `edgejoin-${m.mac.replaceAll(":", "")}`, hostname }), 200, yamlHeaders);
    }
    case "user-data":
      return c.body(await userData(c), 200, yamlHeaders);
    case "network-config":
      return c.body(cloudInit.networkConfig(m.mac), 200, yamlHeaders);
    default:
      // vendor-data: empty is a valid answer; a 404 makes cloud-init retry it ten times.
      return c.body("", 200, yamlHeaders);
  }
}

const knownFile = async (c: Context<AppEnv>, next: () => Promise<void>) => {
  if (!seedFiles.has(c.req.param("file") ?? "")) throw new ApiError("not_found", "the NoCloud seed has meta-data, user-data, vendor-data and network-config");
  await next();
};

/** The four NoCloud seed files, each with and without a trailing slash. */
export const cloudInitRoutes = new Hono<AppEnv>()
  .get("/cloud-init/:mac/:file", knownFile, selectSeedMachine, seedFile)
  .get("/cloud-init/:mac/:file/", knownFile, selectSeedMachine, seedFile);
