/** Rendered cloud-config escapes what it is given, read back with the YAML 1.1 reader in Node (PyYAML and cloud-init's own check: render.cloud-init.test.ts). */
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CloudConfigTemplateError, toYaml, yamlFlow } from "../../server/render/cloud-init.js";
import {
  cloudImageView,
  expectHostileRoundTrip,
  file,
  hostile,
  renderer,
  rendererWith,
  siteExpected,
  siteKeys,
  siteTemplate,
  type Doc,
} from "./hostile-values.js";

describe("YAML escaping of rendered cloud-config", () => {
  it.each(hostile.map((v) => [JSON.stringify(v).slice(0, 40), v]))("hostile value %s → a YAML 1.1 reader gets it back unchanged", (_label, value) => {
    const text = renderer.cloudImage(cloudImageView(value));
    expect(text.startsWith("#cloud-config\n")).toBe(true);
    expectHostileRoundTrip(parse(text, { version: "1.1" }) as Doc, value);
  });

  it("hostile keys and values as plain data → toYaml round-trips them", () => {
    const data = Object.fromEntries(hostile.map((v, i) => [v || `empty${i}`, { list: [v, i, true, null], nested: { [v]: v } }]));
    expect(parse(toYaml(data), { version: "1.1" })).toEqual(data);
  });

  it("the agent script → carried as a readable literal block, byte for byte", () => {
    const text = renderer.cloudImage({ ...cloudImageView("x"), agentScript: renderer.agentFiles().script });
    expect(text).toContain("content: |\n      #!/bin/sh\n");
    expect(file(parse(text, { version: "1.1" }) as Doc, "/usr/local/sbin/edgejoin-agent")).toBe(renderer.agentFiles().script);
  });

  it("yamlFlow → one line whatever the input", () => {
    for (const v of hostile) expect(yamlFlow({ [v]: [v, { v }] })).not.toMatch(/[\n\r\u2028\u2029\u0085]/);
  });
});

describe("user-data templates fail closed", () => {
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
    const text = rendererWith(siteTemplate).cloudImage({ ...cloudImageView("x"), sshAuthorizedKeys: siteKeys }, "cloud-init/custom.user-data");
    expect(parse(text, { version: "1.1" })).toEqual(siteExpected);
  });
});
