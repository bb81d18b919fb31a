/** Values that break naive YAML templating, and the renderer the escaping tests feed them to. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { CloudInitRenderer } from "../../server/render/cloud-init.js";
import { TemplateSet } from "../../server/render/templates.js";
import { testCaCertPem, testConfig } from "../helpers/app.js";
import { testTempDir } from "../helpers/temp-dir.js";

/** Values that break naive YAML templating, one way each. */
export const hostile = [
  `it's "quoted"`,
  "key: value",
  "# not a comment",
  "line one\nline two\n- item: injected\nruncmd: [reboot]",
  "{{bootstrapToken}} {{{agentScript}}}",
  "- list item",
  "ünïcødé ✓ 日本語 😀",
  "\u2028line\u2029separators\u0085next",
  "tab\there\r\ncrlf",
  "\u0001\u001f\u007f\u0080\u009f controls",
  "---\n...\n%YAML 1.1",
  "yes",
  "0755",
  "~",
  "  leading and trailing  ",
  "back\\slash \\n not a newline",
  "&anchor *alias !!python/object:os.system",
  "@at `tick` | pipe > fold",
  "",
];

export const renderer = new CloudInitRenderer(new TemplateSet(testConfig().templatesDir));

export function cloudImageView(value: string) {
  return {
    hostname: "node-525400123456",
    mac: "52:54:00:12:34:56",
    nodeUrl: "https://10.77.0.1:8443",
    caCert: testCaCertPem,
    bootstrapToken: value || "x",
    agentScript: `#!/bin/sh\n${value}\n`,
    agentUnit: value || "x",
    sshAuthorizedKeys: [value || "x", `ssh-ed25519 AAAA ${value}`],
    hasSshAuthorizedKeys: true,
  };
}

export type Doc = Record<string, unknown> & { write_files: { path: string; content: string }[]; ssh_authorized_keys: string[] };
export const file = (doc: Doc, path: string) => doc.write_files.find((f) => f.path === path)?.content;

/** What a cloud-image document rendered with `value` everywhere must read back as. */
export function expectHostileRoundTrip(doc: Doc, value: string): void {
  expect(Object.keys(doc).sort()).toEqual(["hostname", "preserve_hostname", "runcmd", "ssh_authorized_keys", "write_files"]);
  expect(doc.ssh_authorized_keys).toEqual([value || "x", `ssh-ed25519 AAAA ${value}`]);
  expect(file(doc, "/var/lib/edgejoin-agent/bootstrap-token")).toBe(value || "x");
  expect(file(doc, "/usr/local/sbin/edgejoin-agent")).toBe(`#!/bin/sh\n${value}\n`);
  expect(file(doc, "/etc/systemd/system/edgejoin-agent.service")).toBe(value || "x");
  expect(file(doc, "/var/lib/edgejoin-agent/node-url")).toBe("https://10.77.0.1:8443");
  expect(file(doc, "/var/lib/edgejoin-agent/ca.pem")).toBe(testCaCertPem);
  expect(doc.write_files).toHaveLength(6);
}

/** A renderer whose templates folder holds only `cloud-init/custom.user-data.mustache` = `template`; call it inside a test. */
export function rendererWith(template: string): CloudInitRenderer {
  const dir = testTempDir("tpl");
  mkdirSync(join(dir, "cloud-init"));
  writeFileSync(join(dir, "cloud-init/custom.user-data.mustache"), template);
  return new CloudInitRenderer(new TemplateSet(dir));
}

/** The site template of "a cluster template with its own keys and sections", and what it must read back as. */
export const siteTemplate =
  "#cloud-config\nhostname: {{hostname}}\n{{#hasSshAuthorizedKeys}}\nssh_authorized_keys:\n{{#sshAuthorizedKeys}}\n  - {{.}}\n{{/sshAuthorizedKeys}}\n{{/hasSshAuthorizedKeys}}\n";
export const siteKeys = ["a: b", "- c\nruncmd: [x]"];
export const siteExpected = { hostname: "node-525400123456", ssh_authorized_keys: siteKeys };
