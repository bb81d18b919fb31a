/**
 * The only wiring: settings, database, keys, listeners, signals. Nothing else reads
 * `process.env`, binds a port or handles a signal.
 */
import { chmodSync, mkdirSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import { X509Certificate } from "node:crypto";
import { pathToFileURL } from "node:url";
import { serve as serveHttp, type ServerType } from "@hono/node-server";
import pino from "pino";
import { openDb } from "../db/client.js";
import { createApp, makeDeps } from "./app.js";
import { runCli } from "./cli.js";
import { ConfigError, loadConfig, type Config } from "./config.js";
import { ensureDefaultCluster } from "./store/clusters.js";
import { ensureAdminToken } from "./store/admin-token.js";
import { loadKeyring } from "./store/keys.js";
import { describeBootFiles, startTftpServer, type TftpServer } from "./tftp/server.js";
import { loadNodeTls, TlsSetupError, urlHost, type NodeTls } from "./tls/ca.js";

/** Print one line and exit: how every start-up failure an operator can fix is reported. */
function fatal(line: string): never {
  process.stderr.write(`edgejoin: ${line}\n`);
  process.exit(1);
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
  const db = openDb(`${config.dataDir}/edgejoin.db`);
  ensureDefaultCluster(db, { k3sVersion: config.k3sVersion, now: Date.now() });

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
  const admin = ensureAdminToken(db, { configured: config.adminToken, now: Date.now() });
  if (admin.created) {
    // Shown once, straight to stderr and never through the logger: only its hash is kept.
    process.stderr.write(
      `\nedgejoin: no EDGEJOIN_ADMIN_TOKEN was set, so this first start made an admin token.\n` +
        `edgejoin: it is shown only now; keep it (it is stored hashed and cannot be shown again):\n\n    ${admin.created}\n\n`,
    );
  }

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

  const deps = makeDeps({ db, config, logger, keyring: keys.keyring, caCertPem: nodeTls.tls.caCertPem, adminTokenHash: admin.hash });
  // Why /readyz answers 503 as far as the listeners go: machines cannot netboot without TFTP.
  let notReady: string | undefined = "TFTP is not bound yet";
  deps.readiness = () => (notReady === undefined ? { ready: true } : { ready: false, reason: notReady });
  const app = createApp(deps);

  const bootFiles = describeBootFiles(config.bootDir, config.ipxeDir);
  for (const f of bootFiles) {
    if (f.path) logger.info({ file: f.name, from: f.path }, "TFTP will serve iPXE binary");
    else if (f.refused) logger.warn({ file: f.name }, `TFTP will refuse ${f.name}: ${f.refused}`);
    else logger.warn({ file: f.name }, `TFTP cannot serve ${f.name}: run \`apt-get install ipxe\`, or put your own build in ${config.bootDir}`);
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
      onTransfer: (result, bytes) => deps.metrics.tftpTransfer(result, bytes),
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
  logger.info(
    { publicUrl: config.publicUrl, nodeUrl: config.nodeUrl, http: config.httpPort, https: config.httpsPort, tftp: tftp.port, caSha256: caFingerprint },
    "edgejoin is serving",
  );

  const stop = async (signal: string) => {
    logger.info({ signal }, "stopping");
    notReady = "edgejoin is stopping";
    await tftp.close();
    http.close();
    https.close();
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
