import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../server/config.js";
import { testTempDir } from "../helpers/temp-dir.js";

const noAddress = () => undefined;

/** The ConfigError loadConfig throws for `env`; fails the test when it does not throw one. */
function refusal(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env, noAddress);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain("\n");
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe("loadConfig", () => {
  it("no settings → embedded defaults, public URL derived from the host's address", () => {
    const c = loadConfig({}, () => "192.0.2.10");
    expect(c).toMatchObject({
      publicUrl: "http://192.0.2.10:8080",
      publicUrlDerived: true,
      httpPort: 8080,
      tftpPort: 69,
      dataDir: "./data",
      bootDir: "./boot",
      ipxeDir: "/usr/lib/ipxe",
      proxyDhcp: false,
      tokenTtlMs: 86_400_000,
      roleLeaseMs: 1_200_000,
    });
  });

  it("explicit public URL → used as given without its trailing slash", () => {
    const c = loadConfig({ EDGEJOIN_PUBLIC_URL: "http://edge.site.test:8080/" }, noAddress);
    expect(c.publicUrl).toBe("http://edge.site.test:8080");
    expect(c.publicUrlDerived).toBe(false);
  });

  it("HTTPS: defaults to 8443 on the HTTP host; the node URL is the public URL's host on that port, https", () => {
    const c = loadConfig({ EDGEJOIN_PUBLIC_URL: "http://edge.site.test:8080/", EDGEJOIN_HTTP_HOST: "10.0.0.5" }, noAddress);
    expect(c).toMatchObject({ httpsHost: "10.0.0.5", httpsPort: 8443, nodeUrl: "https://edge.site.test:8443" });
    const ip = loadConfig({ EDGEJOIN_PUBLIC_URL: "http://192.0.2.7:80", EDGEJOIN_HTTPS_PORT: "9443", EDGEJOIN_HTTPS_HOST: "127.0.0.1" }, noAddress);
    expect(ip).toMatchObject({ httpsHost: "127.0.0.1", httpsPort: 9443, nodeUrl: "https://192.0.2.7:9443" });
    expect(loadConfig({}, () => "192.0.2.10").nodeUrl).toBe("https://192.0.2.10:8443");
  });

  it("HTTPS port that is no port, or the HTTP port on the same host → refused in one line naming EDGEJOIN_HTTPS_PORT", () => {
    expect(refusal({ EDGEJOIN_PUBLIC_URL: "http://a:1", EDGEJOIN_HTTPS_PORT: "70000" }).message).toMatch(
      /^bad setting EDGEJOIN_HTTPS_PORT must be a port number/,
    );
    expect(refusal({ EDGEJOIN_PUBLIC_URL: "http://a:1", EDGEJOIN_HTTP_PORT: "8443" }).message).toMatch(/^EDGEJOIN_HTTPS_PORT: 8443 is also EDGEJOIN_HTTP_PORT/);
    // 0.0.0.0 takes the port on every address, so a second one cannot bind it.
    expect(refusal({ EDGEJOIN_PUBLIC_URL: "http://a:1", EDGEJOIN_HTTP_PORT: "8443", EDGEJOIN_HTTPS_HOST: "127.0.0.2" }).message).toMatch(
      /^EDGEJOIN_HTTPS_PORT: /,
    );
    // Two distinct addresses may each use the same port number.
    const split = { EDGEJOIN_PUBLIC_URL: "http://a:1", EDGEJOIN_HTTP_HOST: "127.0.0.1", EDGEJOIN_HTTP_PORT: "8443", EDGEJOIN_HTTPS_HOST: "127.0.0.2" };
    expect(loadConfig(split, noAddress).httpsPort).toBe(8443);
  });

  it("durations accept ms, s, m, h, d", () => {
    const c = loadConfig(
      { EDGEJOIN_PUBLIC_URL: "http://a:1", EDGEJOIN_TOKEN_TTL: "90m", EDGEJOIN_ROLE_LEASE: "600s", EDGEJOIN_CREDENTIAL_TTL: "30d" },
      noAddress,
    );
    expect(c.tokenTtlMs).toBe(5_400_000);
    expect(c.roleLeaseMs).toBe(600_000);
    expect(c.credentialTtlMs).toBe(30 * 86_400_000);
    expect(loadConfig({ EDGEJOIN_PUBLIC_URL: "http://a:1", EDGEJOIN_TOKEN_TTL: "2h", EDGEJOIN_ROLE_LEASE: "300000ms" }, noAddress)).toMatchObject({
      tokenTtlMs: 7_200_000,
      roleLeaseMs: 300_000,
    });
  });

  it.each([
    ["EDGEJOIN_TOKEN_TTL", "24", /^bad setting EDGEJOIN_TOKEN_TTL needs a unit: write e\.g\. 24h/],
    ["EDGEJOIN_ROLE_LEASE", "20", /^bad setting EDGEJOIN_ROLE_LEASE needs a unit: write e\.g\. 20m/],
    ["EDGEJOIN_CREDENTIAL_TTL", "365", /^bad setting EDGEJOIN_CREDENTIAL_TTL needs a unit: write e\.g\. 365d/],
    ["EDGEJOIN_TOKEN_TTL", "24 h", /EDGEJOIN_TOKEN_TTL must be a duration such as 24h/],
    ["EDGEJOIN_TOKEN_TTL", "1.5h", /EDGEJOIN_TOKEN_TTL must be a duration/],
    ["EDGEJOIN_TOKEN_TTL", "59m", /EDGEJOIN_TOKEN_TTL must be at least 1h: a bootstrap token must outlive a whole OS install/],
    ["EDGEJOIN_ROLE_LEASE", "45s", /EDGEJOIN_ROLE_LEASE must be at least 5m/],
    ["EDGEJOIN_CREDENTIAL_TTL", "6d", /EDGEJOIN_CREDENTIAL_TTL must be at least 7d/],
    ["EDGEJOIN_CREDENTIAL_TTL", "3651d", /EDGEJOIN_CREDENTIAL_TTL must be at most 3650d/],
  ])("%s=%s → refused in one line", (key, value, line) => {
    expect(() => loadConfig({ EDGEJOIN_PUBLIC_URL: "http://a:1", [key]: value }, noAddress)).toThrow(line);
  });

  it("the floors themselves are accepted", () => {
    const c = loadConfig({ EDGEJOIN_PUBLIC_URL: "http://a:1", EDGEJOIN_TOKEN_TTL: "1h", EDGEJOIN_ROLE_LEASE: "5m", EDGEJOIN_CREDENTIAL_TTL: "7d" }, noAddress);
    expect(c).toMatchObject({ tokenTtlMs: 3_600_000, roleLeaseMs: 300_000, credentialTtlMs: 7 * 86_400_000 });
  });

  it.each([
    ["EDGEJOIN_HTTP_PROT", "EDGEJOIN_HTTP_PORT"],
    ["EDGEJOIN_ROLE_LEASE_TIME", "EDGEJOIN_ROLE_LEASE"],
    ["EDGEJOIN_TOKENTTL", "EDGEJOIN_TOKEN_TTL"],
    ["EDGEJOIN_PUBLICURL", "EDGEJOIN_PUBLIC_URL"],
    ["edgejoin_log_level", "EDGEJOIN_LOG_LEVEL"],
  ])("unknown environment variable %s → refused in one line: did you mean %s?", (name, meant) => {
    const error = refusal({ EDGEJOIN_PUBLIC_URL: "http://a:1", [name]: "1" });
    expect(error.message).toBe(`unknown environment variable ${name} (did you mean ${meant}?); edgejoin's settings are listed in the README (Settings)`);
  });

  it("unknown names far from every setting → refused without a guess; several → all in one line", () => {
    expect(refusal({ EDGEJOIN_PUBLIC_URL: "http://a:1", EDGEJOIN_FOO: "1" }).message).toMatch(/^unknown environment variable EDGEJOIN_FOO; /);
    const both = refusal({ EDGEJOIN_PUBLIC_URL: "http://a:1", EDGEJOIN_HTTP_PROT: "1", EDGEJOIN_AGENT_POLL_CAP: "1" });
    expect(both.message).toMatch(
      /^unknown environment variables EDGEJOIN_AGENT_POLL_CAP \(the node agent's[^)]*\), EDGEJOIN_HTTP_PROT \(did you mean EDGEJOIN_HTTP_PORT\?\); /,
    );
    expect(both.message).not.toContain("\n");
  });

  it("names the CLI client and the test harnesses use stay allowed; an empty unknown one counts as unset", () => {
    const c = loadConfig(
      {
        EDGEJOIN_PUBLIC_URL: "http://a:1",
        EDGEJOIN_URL: "http://127.0.0.1:8080",
        EDGEJOIN_ADMIN_TOKEN: "cli-and-server-admin-token-0123456789",
        EDGEJOIN_HTTP_PROT: "",
        OTHER_HTTP_PROT: "1",
      },
      noAddress,
    );
    expect(c.httpPort).toBe(8080);
  });

  it("every EDGEJOIN_ name used by tests outside test/server is known to the server (the agent's aside)", () => {
    // Helpers, the lab and e2e tests start servers and the CLI with these; none may be refused.
    const testRoot = fileURLToPath(new URL("..", import.meta.url));
    const names = new Set<string>();
    for (const f of readdirSync(testRoot, { recursive: true, encoding: "utf8" })) {
      if (!f.endsWith(".ts") || f.startsWith("server/")) continue;
      for (const m of readFileSync(join(testRoot, f), "utf8").matchAll(/EDGEJOIN_[A-Z0-9_]*[A-Z0-9]/g)) names.add(m[0]);
    }
    expect(names.size).toBeGreaterThan(5);
    for (const name of [...names].filter((n) => !n.startsWith("EDGEJOIN_AGENT_"))) {
      let message = "";
      try {
        loadConfig({ EDGEJOIN_PUBLIC_URL: "http://a:1", [name]: "x" }, noAddress);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, name).not.toMatch(/unknown/);
    }
  });

  it.each([
    ["EDGEJOIN_HTTP_PORT", "abc"],
    ["EDGEJOIN_HTTP_PORT", "70000"],
    ["EDGEJOIN_TFTP_PORT", "-1"],
    ["EDGEJOIN_PUBLIC_URL", "https://edge.site.test"],
    ["EDGEJOIN_PUBLIC_URL", "not a url"],
    ["EDGEJOIN_PUBLIC_URL", "http://admin:secret@edge.site.test"],
    ["EDGEJOIN_PROXY_DHCP", "yes"],
    ["EDGEJOIN_TOKEN_TTL", "forever"],
    ["EDGEJOIN_ADMIN_TOKEN", "short"],
    ["EDGEJOIN_LOG_LEVEL", "loud"],
    ["EDGEJOIN_K3S_VERSION", "latest"],
    ["EDGEJOIN_SYSLOG_PORT", "0"],
    ["EDGEJOIN_PROXY_DHCP_INTERFACES", "eth0;rm -rf"],
    ["EDGEJOIN_IPXE_EFI", "grub.efi"],
  ])("%s=%s → one line naming the setting", (key, value) => {
    let error: unknown;
    try {
      loadConfig({ EDGEJOIN_PUBLIC_URL: "http://10.0.0.5:8080", [key]: value }, noAddress);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain(key);
    expect(message).not.toContain("\n");
  });

  it("ProxyDHCP and syslog settings → parsed: on, interface list, UEFI binary, syslog port", () => {
    const c = loadConfig(
      {
        EDGEJOIN_PUBLIC_URL: "http://10.0.0.5:8080",
        EDGEJOIN_PROXY_DHCP: "on",
        EDGEJOIN_PROXY_DHCP_INTERFACES: "eth0,br-site",
        EDGEJOIN_IPXE_EFI: "ipxe.efi",
        EDGEJOIN_SYSLOG_PORT: "5514",
      },
      noAddress,
    );
    expect(c).toMatchObject({ proxyDhcp: true, proxyDhcpInterfaces: ["eth0", "br-site"], ipxeEfi: "ipxe.efi", syslogPort: 5514 });
    expect(loadConfig({ EDGEJOIN_PUBLIC_URL: "http://10.0.0.5:8080" }, noAddress)).toMatchObject({
      proxyDhcp: false,
      proxyDhcpInterfaces: undefined,
      ipxeEfi: "snponly.efi",
      syslogPort: undefined,
    });
  });

  it("EDGEJOIN_CONFIG names a JSON file → its settings apply, the environment wins over it", () => {
    const file = join(testTempDir("config"), "edgejoin.json");
    writeFileSync(file, JSON.stringify({ EDGEJOIN_HTTP_PORT: 9090, EDGEJOIN_TFTP_PORT: "6969", EDGEJOIN_PUBLIC_URL: "http://10.0.0.5:9090" }));
    const c = loadConfig({ EDGEJOIN_CONFIG: file, EDGEJOIN_TFTP_PORT: "1069" }, noAddress);
    expect(c).toMatchObject({ httpPort: 9090, tftpPort: 1069, publicUrl: "http://10.0.0.5:9090" });
  });

  it("EDGEJOIN_CONFIG that is not a JSON object, or a bad value in it → one line naming it", () => {
    const dir = testTempDir("config");
    writeFileSync(join(dir, "list.json"), "[1, 2]");
    writeFileSync(join(dir, "bad.json"), JSON.stringify({ EDGEJOIN_HTTP_PORT: "eighty" }));
    expect(() => loadConfig({ EDGEJOIN_CONFIG: join(dir, "list.json") }, noAddress)).toThrow(/^EDGEJOIN_CONFIG: /);
    expect(() => loadConfig({ EDGEJOIN_CONFIG: join(dir, "missing.json") }, noAddress)).toThrow(/^EDGEJOIN_CONFIG: /);
    expect(() => loadConfig({ EDGEJOIN_CONFIG: join(dir, "bad.json"), EDGEJOIN_PUBLIC_URL: "http://a:1" }, noAddress)).toThrow(/EDGEJOIN_HTTP_PORT/);
  });

  it("EDGEJOIN_CONFIG with an unknown key → one line naming the file and the key it most likely meant", () => {
    const file = join(testTempDir("config"), "typo.json");
    writeFileSync(file, JSON.stringify({ EDGEJOIN_PUBLIC_URL: "http://10.0.0.5:8080", EDGEJOIN_ROLE_LEASE_TIME: "30m" }));
    const error = refusal({ EDGEJOIN_CONFIG: file });
    expect(error.message).toBe(
      `EDGEJOIN_CONFIG: ${file} has unknown setting EDGEJOIN_ROLE_LEASE_TIME (did you mean EDGEJOIN_ROLE_LEASE?); the settings are listed in the README (Settings)`,
    );
  });

  it("EDGEJOIN_CONFIG with a duration without unit → refused like the environment's", () => {
    const file = join(testTempDir("config"), "ttl.json");
    writeFileSync(file, JSON.stringify({ EDGEJOIN_PUBLIC_URL: "http://10.0.0.5:8080", EDGEJOIN_TOKEN_TTL: 24 }));
    expect(() => loadConfig({ EDGEJOIN_CONFIG: file }, noAddress)).toThrow(/EDGEJOIN_TOKEN_TTL needs a unit: write e\.g\. 24h/);
  });

  it("no public URL and no address to derive it from → says to set EDGEJOIN_PUBLIC_URL", () => {
    expect(() => loadConfig({}, noAddress)).toThrow(/EDGEJOIN_PUBLIC_URL/);
  });
});
