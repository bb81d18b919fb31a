/**
 * edgejoin's own certificate authority and the node API's server certificate, kept in
 * `<data dir>/tls/`. The CA is made once, at first start; machines pin its certificate (it
 * travels in their user-data), so it is never replaced silently. The server certificate is
 * issued by it for the host of `EDGEJOIN_PUBLIC_URL` and issued again whenever that host changes.
 * Certificates are built by `@peculiar/x509` on Node's WebCrypto: no hand-made DER.
 */
import "reflect-metadata"; // tsyringe, inside @peculiar/x509, needs it loaded first
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** ECDSA P-256 with SHA-256: what every curl, OpenSSL and Go TLS stack verifies. */
const keyAlgorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const dayMs = 86_400_000;
/** The CA outlives any machine it will ever vouch for: replacing it means reinstalling every machine. */
const caLifetimeMs = 20 * 365 * dayMs;
const serverLifetimeMs = 10 * 365 * dayMs;
/** A start this close to the server certificate's end issues a new one (the CA stays). */
const serverRenewWithinMs = 365 * dayMs;
/** Clocks of edge boxes without RTC may run behind: certificates are valid from a day before issue. */
const backdateMs = dayMs;

/** What the HTTPS listener and user-data need, all PEM. */
export type NodeTls = { caCertPem: string; certPem: string; keyPem: string };

/** The files in the TLS folder; the two keys are mode 0600. */
export const tlsFiles = { caKey: "ca.key", caCert: "ca.crt", serverKey: "server.key", serverCert: "server.crt" } as const;

/** Why start cannot use the TLS folder as it is; main prints it as one line. */
export class TlsSetupError extends Error {}

/** The host part of a URL as a SAN wants it: IPv6 without brackets. */
export function urlHost(url: string): string {
  return new URL(url).hostname.replace(/^\[(.*)\]$/, "$1");
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0]! &= 0x7f; // a positive INTEGER
  return Buffer.from(bytes).toString("hex");
}

async function newKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(keyAlgorithm, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return `${x509.PemConverter.encode(await webcrypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY")}\n`;
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decodeFirst(pem);
  return (await webcrypto.subtle.importKey("pkcs8", der, keyAlgorithm, false, ["sign"])) as CryptoKey;
}

/** A new self-signed CA: may sign server certificates only (path length 0). */
export async function issueCa(now: number): Promise<{ certPem: string; keyPem: string }> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=edgejoin node API CA ${new Date(now).toISOString().slice(0, 10)}`,
    notBefore: new Date(now - backdateMs),
    notAfter: new Date(now + caLifetimeMs),
    keys,
    signingAlgorithm: keyAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: `${cert.toString("pem")}\n`, keyPem: await privateKeyPem(keys.privateKey) };
}

/** A server certificate for `host` (an IP address gets an IP SAN, a name a DNS SAN), signed by the CA. */
export async function issueServerCert(ca: { certPem: string; keyPem: string }, host: string, now: number): Promise<{ certPem: string; keyPem: string }> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${host.replace(/[,+="\\<>;#]/g, "")}`,
    issuer: caCert.subject,
    notBefore: new Date(now - backdateMs),
    notAfter: new Date(Math.min(now + serverLifetimeMs, caCert.notAfter.getTime())),
    publicKey: keys.publicKey,
    signingKey: await importPrivateKey(ca.keyPem),
    signingAlgorithm: keyAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: isIP(host) ? "ip" : "dns", value: host }]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: `${cert.toString("pem")}\n`, keyPem: await privateKeyPem(keys.privateKey) };
}

/** The hosts a certificate's SAN names (IP addresses in their usual text form). */
export function sanHosts(certPem: string): string[] {
  const san = new x509.X509Certificate(certPem).getExtension(x509.SubjectAlternativeNameExtension);
  return san ? san.names.items.filter((n) => n.type === "ip" || n.type === "dns").map((n) => n.value.toLowerCase()) : [];
}

/** Why the stored server certificate cannot serve `host` any more, or undefined when it can. */
async function serverCertProblem(ca: { certPem: string }, certPem: string, keyPem: string, host: string, now: number): Promise<string | undefined> {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(certPem);
    await importPrivateKey(keyPem);
  } catch {
    return "the stored server certificate or key does not parse";
  }
  if (!(await cert.verify({ publicKey: new x509.X509Certificate(ca.certPem).publicKey, signatureOnly: true }))) {
    return "the stored server certificate was not issued by this CA";
  }
  if (!sanHosts(certPem).includes(host.toLowerCase())) return `the stored server certificate does not cover ${host}`;
  if (cert.notAfter.getTime() - now < serverRenewWithinMs) return "the stored server certificate ends within a year";
  return undefined;
}

/** Write `text` to `path` with `mode` in one step (a crash leaves the old file or the new one). */
function writeAtomic(path: string, text: string, mode: number): void {
  writeFileSync(`${path}.tmp`, text, { mode });
  chmodSync(`${path}.tmp`, mode); // the umask may have narrowed or writeFileSync kept an old file's mode
  renameSync(`${path}.tmp`, path);
}

/** What a start found and did in the TLS folder, for the log. */
export type NodeTlsLoad = { tls: NodeTls; dir: string; madeCa: boolean; serverIssued: string | undefined };

/**
 * Load the CA and server certificate from `<dataDir>/tls`, making the CA at first start and
 * issuing the server certificate again when it does not cover `host` (or is missing, foreign or
 * near its end). A CA half there (key without certificate or the reverse, or one that does not
 * parse) stops start: silently making a new one would cut off every installed machine.
 */
export async function loadNodeTls(opts: { dataDir: string; host: string; now: number }): Promise<NodeTlsLoad> {
  const dir = join(opts.dataDir, "tls");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const path = (name: keyof typeof tlsFiles) => join(dir, tlsFiles[name]);
  const haveKey = existsSync(path("caKey"));
  const haveCert = existsSync(path("caCert"));
  let ca: { certPem: string; keyPem: string };
  let madeCa = false;
  if (!haveKey && !haveCert) {
    ca = await issueCa(opts.now);
    writeAtomic(path("caKey"), ca.keyPem, 0o600);
    writeAtomic(path("caCert"), ca.certPem, 0o644);
    madeCa = true;
  } else if (haveKey !== haveCert) {
    const missing = haveKey ? path("caCert") : path("caKey");
    throw new TlsSetupError(
      `${missing} is missing beside ${haveKey ? path("caKey") : path("caCert")}: restore it from a backup, or delete both to make a new CA (machines installed before then trust the old one and must be reinstalled)`,
    );
  } else {
    ca = { certPem: readFileSync(path("caCert"), "utf8"), keyPem: readFileSync(path("caKey"), "utf8") };
    try {
      new x509.X509Certificate(ca.certPem);
      await importPrivateKey(ca.keyPem);
    } catch {
      throw new TlsSetupError(`${path("caCert")} or ${path("caKey")} does not parse: restore them from a backup, or delete both to make a new CA`);
    }
    chmodSync(path("caKey"), 0o600); // a key restored from a backup may have come back readable by others
  }

  let serverIssued: string | undefined;
  let server: { certPem: string; keyPem: string } | undefined;
  if (existsSync(path("serverCert")) && existsSync(path("serverKey"))) {
    server = { certPem: readFileSync(path("serverCert"), "utf8"), keyPem: readFileSync(path("serverKey"), "utf8") };
    serverIssued = await serverCertProblem(ca, server.certPem, server.keyPem, opts.host, opts.now);
    chmodSync(path("serverKey"), 0o600);
  } else {
    serverIssued = "there was no server certificate";
  }
  if (serverIssued !== undefined || !server) {
    server = await issueServerCert(ca, opts.host, opts.now);
    writeAtomic(path("serverKey"), server.keyPem, 0o600);
    writeAtomic(path("serverCert"), server.certPem, 0o644);
  }
  return { tls: { caCertPem: ca.certPem, certPem: server.certPem, keyPem: server.keyPem }, dir, madeCa, serverIssued };
}
