/** The preflight's rules, with dpkg's answers and the host faked: nothing here runs dpkg or apt-get. */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  cloudInitDisabled,
  installCommand,
  missingPackages,
  notRootMessage,
  packagesFor,
  policyRcD,
  preflight,
  pretendMissing,
  tierPackages,
  type Host,
} from "./debian-packages.js";

const installed = "install ok installed";

/** A host that records what would be done; apt-get install marks the packages installed. */
function fakeHost(opts: { policyExists?: boolean; failOn?: string; status?: Record<string, string> } = {}) {
  const calls: string[] = [];
  const status: Record<string, string> = { ...opts.status };
  const host: Host = {
    exists: (path) => path === policyRcD && opts.policyExists === true,
    writeFile: (path, content, mode) => calls.push(`write ${path} ${mode.toString(8)} ${JSON.stringify(content)}`),
    mkdir: (path) => calls.push(`mkdir ${path}`),
    remove: (path) => calls.push(`remove ${path}`),
    run: (command, args, env) => {
      calls.push(
        `${Object.entries(env)
          .map(([k, v]) => `${k}=${v} `)
          .join("")}${command} ${args.join(" ")}`,
      );
      if (opts.failOn === args[0]) return 100;
      if (args[0] === "install") for (const p of args.slice(3)) status[p] = installed;
      return 0;
    },
  };
  return { host, calls, status: (pkg: string) => status[pkg] };
}

const allInstalled = Object.fromEntries(packagesFor(["integration", "lab"]).map((p) => [p, installed]));

describe("which packages are missing", () => {
  it("dpkg's status per package → only 'install ok installed' counts", () => {
    const answers: Record<string, string | undefined> = {
      curl: installed,
      atftp: "deinstall ok config-files",
      "cloud-init": undefined,
      python3: "install ok half-configured",
      systemd: `${installed}${installed}`,
      ipxe: "unknown ok not-installed",
      chromium: installed,
      xorriso: installed,
    };
    expect(missingPackages(tierPackages.integration, (p) => answers[p])).toEqual(["atftp", "cloud-init", "python3", "ipxe"]);
  });

  it("several tiers → their packages once each, in list order", () => {
    const both = packagesFor(["integration", "lab"]);
    expect(new Set(both).size).toBe(both.length);
    expect(both.slice(0, tierPackages.integration.length)).toEqual([...tierPackages.integration]);
    expect(both).toEqual(expect.arrayContaining([...tierPackages.lab]));
  });

  it("PREFLIGHT_PRETEND_MISSING names → missing whatever dpkg says", () => {
    const status = pretendMissing(() => installed, " atftp, curl ,");
    expect(missingPackages(["curl", "atftp", "ipxe"], status)).toEqual(["curl", "atftp"]);
    expect(
      missingPackages(
        ["curl"],
        pretendMissing(() => installed, undefined),
      ),
    ).toEqual([]);
  });
});

describe("not root", () => {
  it("missing packages → one line with the exact apt-get command, nothing touched", () => {
    const { host, calls } = fakeHost();
    const result = preflight(["integration"], { isRoot: false, status: (p) => (p === "atftp" || p === "curl" ? undefined : installed), host });
    expect(result).toEqual({
      ok: false,
      message: "the integration tests need Debian packages that are not installed; as root, run: apt-get install -y --no-install-recommends curl atftp",
    });
    expect(calls).toEqual([]);
  });

  it("cloud-init among them → the line says to disable it first", () => {
    const line = notRootMessage(["integration", "lab"], ["cloud-init", "qemu-utils"]);
    expect(line).toBe(
      "the integration and lab tests need Debian packages that are not installed; as root, run: apt-get install -y --no-install-recommends cloud-init qemu-utils (first `touch /etc/cloud/cloud-init.disabled`: cloud-init is only there for its schema check)",
    );
    expect(line).not.toContain("\n");
  });

  it("nothing missing → ok, nothing touched", () => {
    const { host, calls } = fakeHost();
    expect(preflight(["integration", "lab"], { isRoot: false, status: (p) => allInstalled[p], host })).toEqual({ ok: true, installed: [] });
    expect(calls).toEqual([]);
  });
});

describe("as root", () => {
  it("missing packages → cloud-init disabled, services forbidden, apt-get update and install, policy removed", () => {
    const f = fakeHost({ status: { ...allInstalled, "cloud-init": "", ovmf: "deinstall ok config-files" } });
    const result = preflight(["integration", "lab"], { isRoot: true, status: f.status, host: f.host });
    expect(result).toEqual({ ok: true, installed: ["cloud-init", "ovmf"] });
    expect(f.calls).toEqual([
      "mkdir /etc/cloud",
      `write ${cloudInitDisabled} 644 ""`,
      `write ${policyRcD} 755 "#!/bin/sh\\nexit 101\\n"`,
      "DEBIAN_FRONTEND=noninteractive apt-get update",
      "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cloud-init ovmf",
      `remove ${policyRcD}`,
    ]);
    expect(installCommand(["cloud-init", "ovmf"])).toBe("apt-get install -y --no-install-recommends cloud-init ovmf");
  });

  it("a policy-rc.d already there → used, left in place; cloud-init not missing → its flag untouched", () => {
    const f = fakeHost({ policyExists: true, status: { ...allInstalled, tcpdump: "" } });
    expect(preflight(["lab"], { isRoot: true, status: f.status, host: f.host })).toEqual({ ok: true, installed: ["tcpdump"] });
    expect(f.calls).toEqual([
      "DEBIAN_FRONTEND=noninteractive apt-get update",
      "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tcpdump",
    ]);
  });

  it("apt-get failing → an error naming it, the temporary policy-rc.d still removed", () => {
    const f = fakeHost({ failOn: "install", status: { ...allInstalled, curl: "" } });
    expect(() => preflight(["integration"], { isRoot: true, status: f.status, host: f.host })).toThrow(
      "apt-get install -y --no-install-recommends curl exited with 100",
    );
    expect(f.calls.at(-1)).toBe(`remove ${policyRcD}`);
  });

  it("a package still missing after apt-get → not ok, named", () => {
    const f = fakeHost({ status: { ...allInstalled, atftp: "" } });
    const status = (p: string) => (p === "atftp" ? undefined : f.status(p));
    expect(preflight(["integration"], { isRoot: true, status, host: f.host })).toEqual({
      ok: false,
      message: "apt-get finished but these are still not installed: atftp",
    });
  });
});

describe("one list, one mechanism", () => {
  const read = (path: string) => readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)), "utf8");

  it("npm scripts → the preflight before the integration and lab tiers (and the guest image before the lab), none before unit", () => {
    const scripts = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts;
    const preflightCmd = "tsx test/preflight/debian-packages.ts";
    const imageCmd = "tsx test/preflight/guest-image.ts";
    expect(scripts["test:unit"]).not.toContain(preflightCmd);
    expect(scripts["test:unit"]).not.toContain(imageCmd);
    expect(scripts["test:integration"]).toBe(`${preflightCmd} integration && vitest run --project integration`);
    expect(scripts["test:lab"]).toBe(`${preflightCmd} lab && ${imageCmd} && vitest run --project lab`);
    expect(scripts.test).toBe(`${preflightCmd} integration lab && ${imageCmd} && vitest run`);
  });

  it(".ci/run → installs nothing itself and runs npm test", () => {
    const ci = read(".ci/run");
    expect(ci).not.toMatch(/apt-get|dpkg/);
    expect(ci).toMatch(/^npm test$/m);
  });
});
