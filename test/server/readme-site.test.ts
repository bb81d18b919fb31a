/**
 * The README's "Deploying at a site" and admin CLI sections, held to the code: the firewall table
 * names every port edgejoin listens on, the troubleshooting table is whole, the kube-vip recipe
 * names the warning the API gives, and the CLI table lists every command the program has.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../../server/cli.js";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

/** The text of one heading's section (`## ` or `### `), up to the next heading of that level or above. */
function section(heading: string): string {
  const level = heading.indexOf(" ");
  const start = readme.indexOf(`\n${heading}\n`);
  if (start === -1) throw new Error(`README has no section "${heading}"`);
  const stop = new RegExp(`\\n#{1,${level}} `, "g");
  stop.lastIndex = start + 1;
  const end = stop.exec(readme)?.index;
  return readme.slice(start, end);
}

/** Table rows (after the header and the rule) as cells. */
function rows(text: string): string[][] {
  return text
    .split("\n")
    .filter((l) => l.startsWith("| ") && !l.startsWith("| ---"))
    .slice(1)
    .map((l) =>
      l
        .slice(2, -2)
        .split(" | ")
        .map((c) => c.trim()),
    );
}

describe("README: deploying at a site", () => {
  it("one edgejoin per site, or a central one with per-site DHCP boot options / ProxyDHCP", () => {
    const text = section("## Deploying at a site");
    expect(text).toContain("**One edgejoin per site**");
    expect(text).toContain("**One central edgejoin**");
    expect(text).toMatch(/ProxyDHCP/);
  });

  it("Firewall: a row for HTTP, HTTPS, TFTP (with its ephemeral ports), ProxyDHCP 67 and 4011, syslog", () => {
    const ports = rows(section("### Firewall")).map((r) => r[0]!);
    expect(ports).toEqual(
      expect.arrayContaining([
        expect.stringContaining("EDGEJOIN_HTTP_PORT"),
        expect.stringContaining("EDGEJOIN_HTTPS_PORT"),
        expect.stringMatching(/EDGEJOIN_TFTP_PORT.*ephemeral/),
        expect.stringMatching(/UDP 67 and 4011/),
        expect.stringContaining("EDGEJOIN_SYSLOG_PORT"),
      ]),
    );
  });

  it("Troubleshooting: symptom → cause → fix, every cell filled, at least eight rows", () => {
    const table = rows(section("### Troubleshooting"));
    expect(table.length).toBeGreaterThanOrEqual(8);
    for (const r of table) {
      expect(r, r.join(" | ")).toHaveLength(3);
      for (const c of r) expect(c.length, r.join(" | ")).toBeGreaterThan(3);
    }
  });

  it("the kube-vip recipe names the API's warning code", () => {
    const text = section("### Making a registration address real (kube-vip)");
    expect(text).toContain("registration_address_unserved");
    expect(text).toContain("kube-vip");
  });

  it("the air-gapped section shows artifacts fetch and ls", () => {
    const text = section("### Air-gapped k3s");
    expect(text).toContain("edgejoin artifacts fetch k3s");
    expect(text).toContain("edgejoin artifacts fetch ubuntu-24.04");
    expect(text).toContain("edgejoin artifacts ls");
  });
});

describe("README: the admin CLI table", () => {
  it("lists every command the program has", () => {
    const table = section("## The admin CLI");
    const listed = new Set([...table.matchAll(/`([a-z-]+)[ `]/g)].map((m) => m[1]!));
    const commands = buildProgram(async () => {})
      .commands.map((c) => c.name())
      .filter((n) => n !== "serve");
    expect(commands.filter((c) => !listed.has(c))).toEqual([]);
  });
});
