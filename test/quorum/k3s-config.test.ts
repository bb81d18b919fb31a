import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { buildK3sConfig, renderK3sConfig, type K3sConfigInput } from "../../server/quorum/k3s-config.js";
import { k3sConfigProblems, k3sFlags } from "../../server/quorum/k3s-flags.js";
import { expectGolden } from "../helpers/golden.js";

const caHash = "a".repeat(64);
const base: K3sConfigInput = {
  form: "init",
  nodeName: "node-525400000001",
  nodeIp: "10.0.0.11",
  registrationAddress: "k3s.example.internal",
  joinHost: null,
  serverToken: "s".repeat(64),
  agentToken: "g".repeat(64),
  caHash: null,
  labels: { "example.com/zone": "a", tier: "yes" },
  taints: ["CriticalAddonsOnly=true:NoExecute"],
};

describe("k3s flag lists", () => {
  it("come from k3s's CLI reference: server has the server-only flags, agent does not", () => {
    for (const f of ["cluster-init", "tls-san", "agent-token", "token", "server", "node-name", "node-label", "node-taint", "disable", "etcd-s3-bucket"]) {
      expect(k3sFlags.server[f], f).toBeDefined();
    }
    for (const f of ["token", "server", "node-name", "node-label", "node-taint", "kubelet-arg"]) expect(k3sFlags.agent[f], f).toBeDefined();
    for (const f of ["cluster-init", "tls-san", "agent-token", "cluster_init"]) expect(k3sFlags.agent[f], f).toBeUndefined();
    expect(Object.keys(k3sFlags.server).length).toBeGreaterThan(100);
  });

  it("a typo or a wrong type → a problem named", () => {
    expect(k3sConfigProblems("server", { cluster_init: true })).toEqual(["cluster_init is not a flag of k3s server"]);
    expect(k3sConfigProblems("server", { "cluster-init": "true" })).toEqual(["cluster-init must be a bool for k3s server"]);
    expect(k3sConfigProblems("agent", { "agent-token": "x" })).toEqual(["agent-token is not a flag of k3s agent"]);
  });
});

describe("k3s config.yaml", () => {
  it("init server → cluster-init, both tokens, SANs, name, labels, taints; parses back to the same data", () => {
    const text = renderK3sConfig(base);
    const parsed = parse(text, { version: "1.1" }) as Record<string, unknown>;
    expect(parsed).toEqual({
      "cluster-init": true,
      token: base.serverToken,
      "agent-token": base.agentToken,
      "tls-san": ["k3s.example.internal", "10.0.0.11"],
      "node-name": "node-525400000001",
      "node-label": ["example.com/zone=a", "tier=yes"],
      "node-taint": ["CriticalAddonsOnly=true:NoExecute"],
    });
    expect(k3sConfigProblems("server", parsed)).toEqual([]);
  });

  it("joining server with the CA hash → server URL, secure server token, plain agent token, no cluster-init", () => {
    const cfg = buildK3sConfig({ ...base, form: "server", joinHost: "10.0.0.10", registrationAddress: null, caHash });
    expect(cfg).toMatchObject({
      server: "https://10.0.0.10:6443",
      token: `K10${caHash}::server:${base.serverToken}`,
      "agent-token": base.agentToken,
      "tls-san": ["10.0.0.11"],
    });
    expect(cfg["cluster-init"]).toBeUndefined();
    expect(k3sConfigProblems("server", cfg)).toEqual([]);
  });

  it("agent → only the agent token (secure node form once the hash is known), never the server token", () => {
    for (const hash of [null, caHash]) {
      const text = renderK3sConfig({ ...base, form: "agent", joinHost: "k3s.example.internal", caHash: hash, taints: [] });
      expect(text).not.toContain(base.serverToken);
      const parsed = parse(text, { version: "1.1" }) as Record<string, unknown>;
      expect(parsed.token).toBe(hash ? `K10${hash}::node:${base.agentToken}` : base.agentToken);
      expect(Object.keys(parsed).sort()).toEqual(["node-label", "node-name", "server", "token"]);
      expect(k3sConfigProblems("agent", parsed)).toEqual([]);
    }
  });

  it("one config per role → byte for byte the golden files", () => {
    const site = { ...base, registrationAddress: "k3s.site.example", caHash };
    expectGolden("k3s/init.config.yaml", renderK3sConfig({ ...site, form: "init" }));
    expectGolden(
      "k3s/server.config.yaml",
      renderK3sConfig({ ...site, form: "server", nodeName: "node-525400000002", nodeIp: "10.0.0.12", joinHost: "k3s.site.example" }),
    );
    expectGolden(
      "k3s/agent.config.yaml",
      renderK3sConfig({ ...site, form: "agent", nodeName: "node-525400000003", nodeIp: "10.0.0.13", joinHost: "k3s.site.example", taints: [] }),
    );
  });

  it("IPv6 join address → bracketed in the URL", () => {
    expect(buildK3sConfig({ ...base, form: "agent", joinHost: "fd00::10" }).server).toBe("https://[fd00::10]:6443");
  });

  it("a YAML 1.1 boolean-looking or numeric value → quoted, read back as a string", () => {
    const text = renderK3sConfig({ ...base, nodeName: "yes", serverToken: "0755", agentToken: "1e5" });
    const parsed = parse(text, { version: "1.1" }) as Record<string, unknown>;
    expect(parsed["node-name"]).toBe("yes");
    expect(parsed.token).toBe("0755");
    expect(parsed["agent-token"]).toBe("1e5");
  });

  it("a label value with a newline → stays one scalar, no extra key", () => {
    const text = renderK3sConfig({ ...base, labels: { a: "b\ncluster-reset: true" } });
    const parsed = parse(text, { version: "1.1" }) as Record<string, unknown>;
    expect(parsed["cluster-reset"]).toBeUndefined();
    expect(parsed["node-label"]).toEqual(["a=b\ncluster-reset: true"]);
  });
});
