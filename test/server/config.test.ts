import { describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../server/config.js";
import { testTempDir } from "../helpers/temp-dir.js";

const noAddress = () => undefined;

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

  it("durations accept s, m, h, d", () => {
    const c = loadConfig({ EDGEJOIN_PUBLIC_URL: "http://a:1", EDGEJOIN_TOKEN_TTL: "90m", EDGEJOIN_ROLE_LEASE: "45s" }, noAddress);
    expect(c.tokenTtlMs).toBe(5_400_000);
    expect(c.roleLeaseMs).toBe(45_000);
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
    ["EDGEJOIN_PROXY_DHCP", "on"],
    ["EDGEJOIN_SYSLOG_PORT", "514"],
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

  it("no public URL and no address to derive it from → says to set EDGEJOIN_PUBLIC_URL", () => {
    expect(() => loadConfig({}, noAddress)).toThrow(/EDGEJOIN_PUBLIC_URL/);
  });
});
