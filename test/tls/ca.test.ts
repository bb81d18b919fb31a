/**
 * edgejoin's CA and the node API's server certificate in the data folder: made at first start,
 * kept, issued again for a new public host, keys 0600. Certificates are read back with Node's own
 * X.509 parser (OpenSSL), not the library that made them.
 */
import { X509Certificate } from "node:crypto";
import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { issueCa, issueServerCert, loadNodeTls, TlsSetupError, urlHost } from "../../server/tls/ca.js";
import { testTempDir } from "../helpers/temp-dir.js";

const now = Date.UTC(2026, 10, 25, 12, 0, 0);
const year = 365 * 86_400_000;
const mode = (path: string) => statSync(path).mode & 0o777;

describe("loadNodeTls", () => {
  it("first start → a CA and a server certificate for the public IP, keys 0600, folder 0700", async () => {
    const dataDir = testTempDir("tls");
    const loaded = await loadNodeTls({ dataDir, host: "192.0.2.10", now });
    expect(loaded).toMatchObject({ madeCa: true, serverIssued: "there was no server certificate", dir: join(dataDir, "tls") });
    expect(mode(join(dataDir, "tls"))).toBe(0o700);
    expect(mode(join(dataDir, "tls/ca.key"))).toBe(0o600);
    expect(mode(join(dataDir, "tls/server.key"))).toBe(0o600);
    expect(readFileSync(join(dataDir, "tls/ca.crt"), "utf8")).toBe(loaded.tls.caCertPem);

    const ca = new X509Certificate(loaded.tls.caCertPem);
    const server = new X509Certificate(loaded.tls.certPem);
    expect(ca.ca).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.subjectAltName).toBe("IP Address:192.0.2.10");
    expect(server.checkIP("192.0.2.10")).toBe("192.0.2.10");
    expect(server.checkIP("192.0.2.11")).toBeUndefined();
    expect(server.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]); // serverAuth only
    // The server's key is the certificate's.
    expect(server.checkPrivateKey((await import("node:crypto")).createPrivateKey(loaded.tls.keyPem))).toBe(true);
  });

  it("a DNS name → DNS SAN; an IPv6 public URL → IP SAN without brackets", async () => {
    const byName = await loadNodeTls({ dataDir: testTempDir("tls"), host: "edge.site.test", now });
    expect(new X509Certificate(byName.tls.certPem).checkHost("edge.site.test")).toBe("edge.site.test");
    expect(new X509Certificate(byName.tls.certPem).subjectAltName).toBe("DNS:edge.site.test");
    expect(urlHost("https://[fd00::5]:8443")).toBe("fd00::5");
    const v6 = await loadNodeTls({ dataDir: testTempDir("tls"), host: "fd00::5", now });
    expect(new X509Certificate(v6.tls.certPem).checkIP("fd00::5")).toBe("fd00::5");
  });

  it("next start, same host → the same CA and certificate, nothing issued", async () => {
    const dataDir = testTempDir("tls");
    const first = await loadNodeTls({ dataDir, host: "192.0.2.10", now });
    const again = await loadNodeTls({ dataDir, host: "192.0.2.10", now: now + 86_400_000 });
    expect(again).toMatchObject({ madeCa: false, serverIssued: undefined });
    expect(again.tls).toEqual(first.tls);
  });

  it("public host changed → a new server certificate for the new host from the same CA", async () => {
    const dataDir = testTempDir("tls");
    const first = await loadNodeTls({ dataDir, host: "192.0.2.10", now });
    const moved = await loadNodeTls({ dataDir, host: "192.0.2.99", now });
    expect(moved.madeCa).toBe(false);
    expect(moved.serverIssued).toBe("the stored server certificate does not cover 192.0.2.99");
    expect(moved.tls.caCertPem).toBe(first.tls.caCertPem);
    expect(moved.tls.keyPem).not.toBe(first.tls.keyPem);
    const cert = new X509Certificate(moved.tls.certPem);
    expect(cert.checkIP("192.0.2.99")).toBe("192.0.2.99");
    expect(cert.checkIP("192.0.2.10")).toBeUndefined();
    expect(cert.verify(new X509Certificate(first.tls.caCertPem).publicKey)).toBe(true);
    expect(readFileSync(join(dataDir, "tls/server.crt"), "utf8")).toBe(moved.tls.certPem);
    expect(mode(join(dataDir, "tls/server.key"))).toBe(0o600);
  });

  it("server certificate near its end, or issued by another CA → issued again; the CA stays", async () => {
    const dataDir = testTempDir("tls");
    const first = await loadNodeTls({ dataDir, host: "192.0.2.10", now });
    const late = await loadNodeTls({ dataDir, host: "192.0.2.10", now: now + 9.5 * year });
    expect(late.serverIssued).toBe("the stored server certificate ends within a year");
    expect(late.tls.caCertPem).toBe(first.tls.caCertPem);
    const stranger = await issueServerCert(await issueCa(now), "192.0.2.10", now);
    writeFileSync(join(dataDir, "tls/server.crt"), stranger.certPem);
    writeFileSync(join(dataDir, "tls/server.key"), stranger.keyPem);
    const fixed = await loadNodeTls({ dataDir, host: "192.0.2.10", now });
    expect(fixed.serverIssued).toBe("the stored server certificate was not issued by this CA");
    expect(new X509Certificate(fixed.tls.certPem).verify(new X509Certificate(first.tls.caCertPem).publicKey)).toBe(true);
  });

  it("keys restored readable by others → back to 0600 at start", async () => {
    const dataDir = testTempDir("tls");
    await loadNodeTls({ dataDir, host: "192.0.2.10", now });
    chmodSync(join(dataDir, "tls/ca.key"), 0o644);
    chmodSync(join(dataDir, "tls/server.key"), 0o644);
    chmodSync(join(dataDir, "tls"), 0o755);
    await loadNodeTls({ dataDir, host: "192.0.2.10", now });
    expect(mode(join(dataDir, "tls/ca.key"))).toBe(0o600);
    expect(mode(join(dataDir, "tls/server.key"))).toBe(0o600);
    expect(mode(join(dataDir, "tls"))).toBe(0o700);
  });

  it("CA key lost, or CA certificate garbled → start refused naming the file; never a silent new CA", async () => {
    const dataDir = testTempDir("tls");
    const first = await loadNodeTls({ dataDir, host: "192.0.2.10", now });
    const key = readFileSync(join(dataDir, "tls/ca.key"), "utf8");
    rmSync(join(dataDir, "tls/ca.key"));
    const lost = loadNodeTls({ dataDir, host: "192.0.2.10", now });
    await expect(lost).rejects.toThrow(TlsSetupError);
    await expect(lost).rejects.toThrow(`${join(dataDir, "tls/ca.key")} is missing`);
    writeFileSync(join(dataDir, "tls/ca.key"), key, { mode: 0o600 });
    writeFileSync(join(dataDir, "tls/ca.crt"), "-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n");
    await expect(loadNodeTls({ dataDir, host: "192.0.2.10", now })).rejects.toThrow(/does not parse/);
    writeFileSync(join(dataDir, "tls/ca.crt"), first.tls.caCertPem);
    expect((await loadNodeTls({ dataDir, host: "192.0.2.10", now })).tls.caCertPem).toBe(first.tls.caCertPem);
  });
});
