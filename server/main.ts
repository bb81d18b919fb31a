/**
 * The only wiring: settings, database, keys, listeners, signals. Nothing else reads
 * `process.env`, binds a port or handles a signal.
 */
import { chmodSync, mkdirSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { createServer as createHttpsServer } from "node:https";
import { X509Certificate } from "node:crypto";
import { pathToFileURL } from "node:url";
import { serve as serveHttp, type ServerType } from "@hono/node-server";
import pino from "pino";
import { startCheckpointer } from "../db/checkpointer.js";
import { openDb } from "../db/client.js";
import { createApp, makeDeps } from "./app.js";
import { runCli } from "./cli.js";
import { ConfigError, loadConfig, type Config } from "./config.js";
import { flushDeferred } from "./store/deferred.js";
import { clusterArches, ensureDefaultCluster, listClusters } from "./store/clusters.js";
import { checkArtifacts, neededArtifacts } from "./clusters/artifacts.js";
import { hasAdminTokens, newAdminToken, storeInitialToken } from "./store/admin-token.js";
import { loadKeyring } from "./store/keys.js";
import { recordTftpTransfer } from "./store/timeline.js";
import { describeBootFiles, startTftpServer, type TftpServer } from "./tftp/server.js";
import { ARM64_BINARY, type ProxySettings } from "./dhcp/proxy.js";
import { startProxyDhcp, type ProxyDhcpServer } from "./dhcp/server.js";
import { defaultAddress, subnetsOf } from "./dhcp/subnets.js";
import type { Metrics } from "./metrics/registry.js";
import { answersTcp, urlProblem, warnUnservedAtMirror } from "./net/reachable.js";
import { startSyslogReceiver } from "./syslog/server.js";
import { fileSyslog } from "./store/syslog.js";
import { ContainedDir } from "./files/contained-dir.js";
import { loadNodeTls, TlsSetupError, urlHost, type NodeTls } from "./tls/ca.js";

/** Print one line and exit: how every start-up failure an operator can fix is reported. */
function fatal(line: string): never {
  process.stderr.write(`edgejoin: ${line}\n`);
  process.exit(1);
}

/** ProxyDHCP on UDP 67 and 4011 (bound on every address: PXE DISCOVERs are broadcasts). */
async function startProxyDhcpOrExit(config: Config, logger: pino.Logger, metrics: Metrics): Promise<ProxyDhcpServer> {
  const arm64 = new ContainedDir(config.bootDir).locateSync(ARM64_BINARY).kind === "file" ? ARM64_BINARY : undefined;
  const build = (): ProxySettings | string => {
    const subnets = subnetsOf(config.proxyDhcpInterfaces, networkInterfaces());
    if (typeof subnets === "string") return subnets;
    return { publicUrl: config.publicUrl, subnets, defaultAddress: defaultAddress(config.publicUrl, subnets), uefiBinary: config.ipxeEfi, arm64Binary: arm64 };
  };
  // Node lists only interfaces that are up and running: a bridge whose ports are all down has no
  // address yet. Read them again instead of refusing to start: every 5 s while they answer, and
  // within 200 ms while they do not, because a BIOS iPXE ROM gives up its DHCP after a few seconds.
  let cached = { at: Date.now(), settings: build() };
  const settings = () => {
    const stale = typeof cached.settings === "string" ? 200 : 5_000;
    if (Date.now() - cached.at > stale) cached = { at: Date.now(), settings: build() };
    return cached.settings;
  };
  if (typeof cached.settings === "string") logger.warn({ reason: cached.settings }, "ProxyDHCP answers nobody until this is fixed");
  try {
    const server = await startProxyDhcp({
      host: "0.0.0.0",
      dhcpPort: 67,
      pxePort: 4011,
      clientPort: 68,
      broadcastAddress: "255.255.255.255",
      settings,
      logger,
      onPacket: (outcome) => metrics.proxyDhcpPacket(outcome),
    });
    const now = cached.settings;
    logger.info(
      { subnets: typeof now === "string" ? [] : now.subnets.map((n) => `${n.address}/${n.prefix}`), uefi: config.ipxeEfi, arm64: arm64 ?? null },
      "ProxyDHCP is answering PXE clients",
    );
    return server;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fatal(
      `cannot bind ProxyDHCP on UDP 67 and 4011 (${code}): run as root or with CAP_NET_BIND_SERVICE, stop the other DHCP/ProxyDHCP server on this host, or set EDGEJOIN_PROXY_DHCP=off`,
    );
  }
}

function listenHttp(app: ReturnType<typeof createApp>, config: Config): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serveHttp({ fetch: app.fetch, hostname: config.httpHost, port: config.httpPort }, () => resolve(server));
    server.once("error", reject);
  });
}

/** The node API's listener: the same app, over TLS with the certificate edgejoin's CA issued. */
function listenHttps(app: ReturnType<typeof createApp>, config: Config, tls: NodeTls): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serveHttp(
      {
        fetch: app.fetch,
        hostname: config.httpsHost,
        port: config.httpsPort,
        createServer: createHttpsServer,
        // The CA goes along so a client holding only a fingerprint can still build the chain.
        serverOptions: { key: tls.keyPem, cert: `${tls.certPem}${tls.caCertPem}`, minVersion: "TLSv1.2" },
      },
      () => resolve(server),
    );
    server.once("error", reject);
  });
}

/** Start edgejoin with settings from `env`; resolves once every listener is bound. */
export async function serve(env: Record<string, string | undefined> = process.env) {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) fatal(err.message);
    throw err;
  }
  const logger = pino({ level: config.logLevel, redact: ["*.token", "*.credential", "*.authorization", "*.adminToken"] });
  if (config.publicUrlDerived) {
    logger.warn({ publicUrl: config.publicUrl }, "EDGEJOIN_PUBLIC_URL is unset; derived it from this host's first non-loopback address");
  }

  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // A folder made beforehand (by an admin, a package, a volume) keeps its mode through mkdir: the
  // database, keys and CA inside are for edgejoin alone, so it is made owner-only at every start.
  chmodSync(config.dataDir, 0o700);
  const dbFile = `${config.dataDir}/edgejoin.db`;
  const db = openDb(dbFile);
  const checkpointer = startCheckpointer(db, dbFile, {
    onError: (err) => logger.warn({ err: err.message }, "the WAL checkpoint thread stopped; the server checkpoints the database itself"),
  });
  ensureDefaultCluster(db, { k3sVersion: config.k3sVersion, now: Date.now() });
  // The artifacts folder always exists in a running edgejoin, so /boot.ipxe can tell "missing" from "not managed".
  mkdirSync(config.artifactsDir, { recursive: true });

  const keys = loadKeyring(db, {
    dataDir: config.dataDir,
    now: Date.now(),
    maxTokenLifetimeMs: Math.max(config.tokenTtlMs, config.credentialTtlMs),
  });
  if (keys.created) logger.info({ kid: keys.created }, "made a new Ed25519 signing key");
  if (keys.lostPrivateKey) {
    logger.warn(
      { kid: keys.lostPrivateKey.kid, reason: keys.lostPrivateKey.reason },
      "the active signing key's private file is unusable; retired it and made a new one",
    );
  }
  if (keys.pruned.length > 0) logger.info({ kids: keys.pruned }, "dropped retired signing keys whose tokens have all expired");
  // Made now, stored and shown only once every listener is bound: a start that fails uses nothing up.
  const initialToken = config.adminToken || hasAdminTokens(db) ? undefined : newAdminToken();

  let nodeTls: Awaited<ReturnType<typeof loadNodeTls>>;
  try {
    nodeTls = await loadNodeTls({ dataDir: config.dataDir, host: urlHost(config.nodeUrl), now: Date.now() });
  } catch (err) {
    if (err instanceof TlsSetupError) fatal(err.message);
    throw err;
  }
  // Admins pin the CA by this fingerprint (README, Security): fetching the PEM over plain HTTP proves nothing.
  const caFingerprint = new X509Certificate(nodeTls.tls.caCertPem).fingerprint256;
  if (nodeTls.madeCa) logger.info({ dir: nodeTls.dir, caSha256: caFingerprint }, "made edgejoin's CA for the node API");
  if (nodeTls.serverIssued) logger.info({ host: urlHost(config.nodeUrl), why: nodeTls.serverIssued }, "issued a new server certificate for the node API");

  const deps = makeDeps({ db, config, logger, keyring: keys.keyring, caCertPem: nodeTls.tls.caCertPem });
  // Why /readyz answers 503 as far as the listeners go: machines cannot netboot without TFTP.
  let notReady: string | undefined = "TFTP is not bound yet";
  deps.probeTcp = answersTcp;
  deps.probeUrl = urlProblem;
  deps.readiness = () => (notReady === undefined ? { ready: true } : { ready: false, reason: notReady });
  const app = createApp(deps);

  const bootFiles = describeBootFiles(config.bootDir, config.ipxeDir);
  for (const f of bootFiles) {
    if (f.path) logger.info({ file: f.name, from: f.path }, "TFTP will serve iPXE binary");
    else if (f.refused) logger.warn({ file: f.name }, `TFTP will refuse ${f.name}: ${f.refused}`);
    else logger.warn({ file: f.name }, `TFTP cannot serve ${f.name}: run \`apt-get install ipxe\`, or put your own build in ${config.bootDir}`);
  }

  for (const cluster of listClusters(db)) {
    const { missing, mirrored } = checkArtifacts(
      neededArtifacts(cluster, clusterArches(db, cluster.id)),
      (p) => deps.artifacts.has(p),
      cluster.installer.mirror_url,
    );
    const mirrorUrl = cluster.installer.mirror_url;
    if (mirrored.length > 0 && mirrorUrl) void warnUnservedAtMirror(logger, { name: cluster.name, mirrorUrl }, mirrored, urlProblem);
    if (missing.length > 0) {
      logger.warn(
        { cluster: cluster.name, missing, artifactsDir: config.artifactsDir },
        `cluster ${cluster.name} lacks files in the artifacts folder: ${missing.join(", ")}`,
      );
    }
  }

  let tftp: TftpServer;
  try {
    tftp = await startTftpServer({
      host: config.tftpHost,
      port: config.tftpPort,
      bootDir: config.bootDir,
      ipxeDir: config.ipxeDir,
      // iPXE builds that look for autoexec.ipxe get the same chain a bare /boot.ipxe answers.
      dynamicFile: (name: string) => (name === "autoexec.ipxe" ? Buffer.from(deps.ipxe.chain()) : undefined),
      onTransfer: (result, bytes, transfer) => {
        deps.metrics.tftpTransfer(result, bytes);
        // Filed by address: a machine's timeline shows the transfers from the addresses it used.
        if (result !== "size_probe") recordTftpTransfer(db, { ...transfer, result, bytes, at: Date.now() });
      },
      logger,
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EADDRINUSE") {
      fatal(
        `cannot bind TFTP on ${config.tftpHost}:${config.tftpPort} (${code}): run as root or with CAP_NET_BIND_SERVICE, free the port, or set EDGEJOIN_TFTP_PORT to a free port your DHCP server names`,
      );
    }
    if (code === "EADDRNOTAVAIL") {
      fatal(`cannot bind TFTP on ${config.tftpHost}:${config.tftpPort}: set EDGEJOIN_TFTP_HOST to an IP address of this host, or 0.0.0.0`);
    }
    throw err;
  }

  const proxyDhcp = config.proxyDhcp ? await startProxyDhcpOrExit(config, logger, deps.metrics) : undefined;
  const syslogPort = config.syslogPort;
  const syslog =
    syslogPort === undefined
      ? undefined
      : await startSyslogReceiver({
          host: "0.0.0.0",
          port: syslogPort,
          file: (sourceIp, line) => fileSyslog(db, { sourceIp, line, now: Date.now() }) !== undefined,
          logger,
        }).catch((err: NodeJS.ErrnoException) =>
          fatal(`cannot bind the syslog receiver on UDP ${syslogPort} (${err.code}): free the port, pick another EDGEJOIN_SYSLOG_PORT, or unset it`),
        );
  if (syslog) deps.metrics.setSyslogReader(() => syslog.stats());

  notReady = undefined;

  let http: ServerType;
  try {
    http = await listenHttp(app, config);
  } catch (err) {
    fatal(`cannot bind HTTP on ${config.httpHost}:${config.httpPort} (${(err as NodeJS.ErrnoException).code}): set EDGEJOIN_HTTP_PORT to a free port`);
  }
  let https: ServerType;
  try {
    https = await listenHttps(app, config, nodeTls.tls);
  } catch (err) {
    fatal(`cannot bind HTTPS on ${config.httpsHost}:${config.httpsPort} (${(err as NodeJS.ErrnoException).code}): set EDGEJOIN_HTTPS_PORT to a free port`);
  }
  if (initialToken !== undefined && storeInitialToken(db, initialToken, Date.now())) {
    // Shown once, straight to stderr and never through the logger: only its hash is kept.
    process.stderr.write(
      `\nedgejoin: no EDGEJOIN_ADMIN_TOKEN was set, so this first start made the admin token "initial".\n` +
        `edgejoin: it is shown only now; keep it (it is stored hashed and cannot be shown again;\n` +
        `edgejoin: \`edgejoin tokens reset-initial\`, run where the data folder is, replaces a lost one):\n\n    ${initialToken}\n\n`,
    );
  }
  logger.info(
    { publicUrl: config.publicUrl, nodeUrl: config.nodeUrl, http: config.httpPort, https: config.httpsPort, tftp: tftp.port, caSha256: caFingerprint },
    "edgejoin is serving",
  );

  const stop = async (signal: string) => {
    logger.info({ signal }, "stopping");
    notReady = "edgejoin is stopping";
    await tftp.close();
    await proxyDhcp?.close();
    await syslog?.close();
    http.close();
    https.close();
    await checkpointer.stop();
    try {
      flushDeferred(db);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, "could not write the last timeline lines");
    }
    db.$client.close();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
  return { config, http, https, tftp, db };
}

// `npm start` and `node --import tsx server/main.ts` land here: the same command line as
// `edgejoin serve`, so `npm start -- --help` prints help instead of serving.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runCli(["serve", ...process.argv.slice(2)], serve);
}
