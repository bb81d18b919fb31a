/** Rendered cloud-config as cloud-init itself reads it: PyYAML (YAML 1.1) and `cloud-init schema` (Debian's cloud-init and python3). */
import { describe, expect, it } from "vitest";
import { toYaml } from "../../server/render/cloud-init.js";
import { cloudInitSchema, expectValidUserData, pyyamlLoad } from "./cloud-init-tools.js";
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

describe("YAML escaping of rendered cloud-config, read by cloud-init", () => {
  it.each(hostile.map((v) => [JSON.stringify(v).slice(0, 40), v]))("hostile value %s → PyYAML gets it back unchanged", (_label, value) => {
    expectHostileRoundTrip(pyyamlLoad(renderer.cloudImage(cloudImageView(value))) as Doc, value);
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
  });

  it("the agent script → PyYAML reads it back byte for byte", () => {
    const text = renderer.cloudImage({ ...cloudImageView("x"), agentScript: renderer.agentFiles().script });
    expect(file(pyyamlLoad(text) as Doc, "/usr/local/sbin/edgejoin-agent")).toBe(renderer.agentFiles().script);
  });

  it("a cluster template with its own keys and sections → PyYAML reads the escaped values back", () => {
    const text = rendererWith(siteTemplate).cloudImage({ ...cloudImageView("x"), sshAuthorizedKeys: siteKeys }, "cloud-init/custom.user-data");
    expect(pyyamlLoad(text)).toEqual(siteExpected);
  });
});
