import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CloudConfigTemplateError, CloudInitRenderer, toYaml, yamlFlow } from "../../server/render/cloud-init.js";
import { TemplateSet } from "../../server/render/templates.js";
import { testConfig } from "../helpers/app.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { cloudInitSchema, expectValidUserData, pyyamlLoad } from "./cloud-init-tools.js";

/** Values that break naive YAML templating, one way each. */
const hostile = [
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

const templates = new TemplateSet(testConfig().templatesDir);
const renderer = new CloudInitRenderer(templates);

function cloudImageView(value: string) {
  return {
    hostname: "node-525400123456",
    mac: "52:54:00:12:34:56",
    serverUrl: "http://10.77.0.1:8080",
    bootstrapToken: value || "x",
    agentScript: `#!/bin/sh\n${value}\n`,
    agentUnit: value || "x",
    sshAuthorizedKeys: [value || "x", `ssh-ed25519 AAAA ${value}`],
    hasSshAuthorizedKeys: true,
  };
}

type Doc = Record<string, unknown> & { write_files: { path: string; content: string }[]; ssh_authorized_keys: string[] };
const file = (doc: Doc, path: string) => doc.write_files.find((f) => f.path === path)?.content;

describe("YAML escaping of rendered cloud-config", () => {
  it.each(hostile.map((v) => [JSON.stringify(v).slice(0, 40), v]))("hostile value %s → both YAML readers get it back unchanged", (_label, value) => {
    const text = renderer.cloudImage(cloudImageView(value));
    expect(text.startsWith("#cloud-config\n")).toBe(true);
    for (const doc of [parse(text, { version: "1.1" }) as Doc, pyyamlLoad(text) as Doc]) {
      expect(Object.keys(doc).sort()).toEqual(["hostname", "preserve_hostname", "runcmd", "ssh_authorized_keys", "write_files"]);
      expect(doc.ssh_authorized_keys).toEqual([value || "x", `ssh-ed25519 AAAA ${value}`]);
      expect(file(doc, "/var/lib/edgejoin-agent/bootstrap-token")).toBe(value || "x");
      expect(file(doc, "/usr/local/sbin/edgejoin-agent")).toBe(`#!/bin/sh\n${value}\n`);
      expect(file(doc, "/etc/systemd/system/edgejoin-agent.service")).toBe(value || "x");
      expect(doc.write_files).toHaveLength(5);
    }
  });

  it("each hostile document → cloud-init's schema check accepts it", () => {
    expectValidUserData(...hostile.map((v) => renderer.cloudImage(cloudImageView(v))));
  });

  it("every hostile value in one document → cloud-init's schema validator accepts it", () => {
    const text = renderer.cloudImage({ ...cloudImageView("x"), sshAuthorizedKeys: hostile.filter((v) => v !== "") });
    const result = cloudInitSchema(text);
    expect(result.output).toContain("Valid cloud-config");
    expect(result.ok).toBe(true);
    expect((pyyamlLoad(text) as Doc).ssh_authorized_keys).toEqual(hostile.filter((v) => v !== ""));
  });

  it("hostile keys and values as plain data → toYaml round-trips them through PyYAML", () => {
    const data = Object.fromEntries(hostile.map((v, i) => [v || `empty${i}`, { list: [v, i, true, null], nested: { [v]: v } }]));
    expect(pyyamlLoad(toYaml(data))).toEqual(data);
    expect(parse(toYaml(data), { version: "1.1" })).toEqual(data);
  });

  it("the agent script → carried as a readable literal block, byte for byte", () => {
    const text = renderer.cloudImage({ ...cloudImageView("x"), agentScript: renderer.agentFiles().script });
    expect(text).toContain("content: |\n      #!/bin/sh\n");
    expect(file(pyyamlLoad(text) as Doc, "/usr/local/sbin/edgejoin-agent")).toBe(renderer.agentFiles().script);
  });

  it("yamlFlow → one line whatever the input", () => {
    for (const v of hostile) expect(yamlFlow({ [v]: [v, { v }] })).not.toMatch(/[\n\r\u2028\u2029\u0085]/);
  });
});

describe("user-data templates fail closed", () => {
  function rendererWith(template: string) {
    const dir = testTempDir("tpl");
    mkdirSync(join(dir, "cloud-init"));
    writeFileSync(join(dir, "cloud-init/custom.user-data.mustache"), template);
    return new CloudInitRenderer(new TemplateSet(dir));
  }

  it("triple mustache (unescaped value) → refused", () => {
    const r = rendererWith("#cloud-config\nhostname: {{{hostname}}}\n");
    expect(() => r.cloudImage(cloudImageView("x"), "cloud-init/custom.user-data")).toThrow(CloudConfigTemplateError);
  });

  it("a name the view does not have → refused instead of rendered empty", () => {
    const r = rendererWith("#cloud-config\nhostname: {{hostnme}}\n");
    expect(() => r.cloudImage(cloudImageView("x"), "cloud-init/custom.user-data")).toThrow(/unknown value \{\{hostnme\}\}/);
  });

  it("a template that is not YAML, or lacks #cloud-config → refused", () => {
    expect(() => rendererWith("#cloud-config\na: [\n").cloudImage(cloudImageView("x"), "cloud-init/custom.user-data")).toThrow(CloudConfigTemplateError);
    expect(() => rendererWith("hostname: {{hostname}}\n").cloudImage(cloudImageView("x"), "cloud-init/custom.user-data")).toThrow(/#cloud-config/);
  });

  it("a cluster template with its own keys and sections → rendered, values escaped", () => {
    const r = rendererWith("#cloud-config\nhostname: {{hostname}}\n{{#hasSshAuthorizedKeys}}\nssh_authorized_keys:\n{{#sshAuthorizedKeys}}\n  - {{.}}\n{{/sshAuthorizedKeys}}\n{{/hasSshAuthorizedKeys}}\n");
    const text = r.cloudImage({ ...cloudImageView("x"), sshAuthorizedKeys: ["a: b", "- c\nruncmd: [x]"] }, "cloud-init/custom.user-data");
    expect(pyyamlLoad(text)).toEqual({ hostname: "node-525400123456", ssh_authorized_keys: ["a: b", "- c\nruncmd: [x]"] });
  });
});
