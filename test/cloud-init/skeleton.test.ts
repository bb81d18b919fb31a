/**
 * A user-data filled into a cluster's skeleton is byte for byte the full rendering of the same
 * machine: over many machines whose values take every shape the YAML writer distinguishes.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { type AutoinstallView, CloudInitRenderer, type MachineValues, logUploadCommand } from "../../server/render/cloud-init.js";
import { TemplateSet } from "../../server/render/templates.js";
import { testCaCertPem, testConfig } from "../helpers/app.js";

const renderer = () => new CloudInitRenderer(new TemplateSet(testConfig().templatesDir));
const pick = (alphabet: string, n: number) => Array.from(randomBytes(n), (b) => alphabet[b % alphabet.length]).join("");

/** Host names of every kind the naming rule can give: letter or digit first, all digits, YAML 1.1 words, 63 characters. */
const hostnames = ["node-0a1b2c3d4e5f", "7edge", "0001", "no", "on", "y", "e1", "nan", "null", `a${"b".repeat(62)}`, "x-1-2"];

function machine(i: number): MachineValues {
  const mac = Array.from({ length: 6 }, () => pick("0123456789abcdef", 2)).join(":");
  const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  return {
    hostname: hostnames[i % hostnames.length]!,
    mac,
    bootstrapToken: `eyJ${pick(b64, 40)}.${pick(b64, 60 + (i % 7))}.${pick(b64, 86)}`,
    progressToken: pick(b64, 43),
  };
}

const view =
  (sshKeys: string[]) =>
  (v: MachineValues & { macHex: string }): AutoinstallView => {
    const progress = `https://edgejoin.site.example:8443/install-progress/${v.macHex}`;
    return {
      hostname: v.hostname,
      mac: v.mac,
      nodeUrl: "https://edgejoin.site.example:8443",
      caCert: testCaCertPem,
      bootstrapToken: v.bootstrapToken,
      agentScript: "#!/bin/sh\necho agent\n",
      agentUnit: "[Unit]\nDescription=edgejoin agent\n",
      sshAuthorizedKeys: sshKeys,
      hasSshAuthorizedKeys: sshKeys.length > 0,
      adminUser: "edgejoin",
      passwordHash: "!",
      allowPasswordLogin: false,
      storageLayout: "direct",
      progressUrl: `${progress}?token=${encodeURIComponent(v.progressToken)}`,
      logUploadCommand: logUploadCommand(`${progress}/log?token=${encodeURIComponent(v.progressToken)}`),
    };
  };

describe("user-data from a cluster's skeleton", () => {
  it("200 machines of every value shape → each answer equals its full rendering, and most were filled", () => {
    const r = renderer();
    const build = view(["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ site-admin"]);
    for (let i = 0; i < 200; i++) {
      const values = machine(i);
      const filled = r.autoinstallFor(values, build);
      const full = renderer().autoinstall(build({ ...values, macHex: values.mac.replaceAll(":", "") }));
      expect(filled).toBe(full);
      expect((parse(filled, { version: "1.1" }) as { autoinstall: { identity: { hostname: unknown } } }).autoinstall.identity.hostname).toBe(values.hostname);
    }
    // Names a reader takes for something else when bare are rendered in full every time; every other
    // answer is filled, but for the first of each shape (letter first, digit first), which makes the skeleton.
    const readAsOther = new Set(["no", "on", "y", "e1", "null"]);
    const plain = Array.from({ length: 200 }, (_, i) => hostnames[i % hostnames.length]!).filter((h) => !readAsOther.has(h)).length;
    expect(r.stats.filled).toBe(plain - 2);
    expect(r.stats.filled + r.stats.rendered).toBe(200);
  });

  it("a changed cluster view (new SSH keys) → a new skeleton, never the old one", () => {
    const r = renderer();
    const values = machine(0);
    r.autoinstallFor(values, view([]));
    const changed = r.autoinstallFor(values, view(["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ other"]));
    expect(changed).toContain("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ other");
    expect(r.stats.rendered).toBe(2);
  });
});
