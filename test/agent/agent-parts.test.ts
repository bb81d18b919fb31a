/** The agent's own JSON reader and writer (awk, no jq on a fresh machine) and its systemd unit. */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { agentPaths } from "../../server/render/cloud-init.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { requireTools } from "../helpers/tools.js";

const agent = fileURLToPath(new URL("../../templates/agent/edgejoin-agent.sh", import.meta.url));
const unit = fileURLToPath(new URL("../../templates/agent/edgejoin-agent.service", import.meta.url));

/** Run `script` in sh with the agent's functions loaded; stdin from `input`. */
function withAgentFunctions(script: string, input = ""): { status: number | null; stdout: Buffer } {
  requireTools({ sh: "dash" });
  const r = spawnSync("sh", ["-c", `. "$0"; ${script}`, agent], {
    input,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", EDGEJOIN_AGENT_FUNCTIONS_ONLY: "1" },
    timeout: 20_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout };
}

const strings = [
  "plain",
  `quo"te and back\\slash and \\n literal`,
  "line one\nline two\r\n\ttabbed",
  "ünïcødé ✓ 日本語",
  "emoji 😀 and 𝄞 (surrogate pairs)",
  "\u2028\u2029\u0085\u00a0",
  'cluster-init: true\ntoken: "K10abc::server:secret"\nnode-label:\n  - "a=b"\n',
  "",
];

describe("agent json_get", () => {
  it.each(strings.map((s) => [JSON.stringify(s).slice(0, 30), s]))("string %s → decoded to the same UTF-8 bytes", (_l, value) => {
    const doc = JSON.stringify({ role: "init", install: { env: { X: value } }, config_yaml: value, list: [value, { k: value }] });
    for (const path of ["config_yaml", "install.env.X", "list.0", "list.1.k"]) {
      const r = withAgentFunctions(`json_get ${path}`, doc);
      expect(r.status, path).toBe(0);
      expect(r.stdout.equals(Buffer.from(value, "utf8")), `${path}: ${r.stdout.toString("hex")}`).toBe(true);
    }
  });

  it("numbers, null, missing, objects, member names", () => {
    const doc = JSON.stringify({ retry_after: 30, binary_url: null, install: { env: { INSTALL_K3S_EXEC: "server", INSTALL_K3S_VERSION: "v1" } } }, null, 2);
    expect(withAgentFunctions("json_get retry_after", doc).stdout.toString()).toBe("30");
    expect(withAgentFunctions("json_get binary_url", doc).status).toBe(1);
    expect(withAgentFunctions("json_get nope", doc).status).toBe(1);
    expect(withAgentFunctions("json_get install.env", doc).status).toBe(1);
    expect(withAgentFunctions("json_get install.env keys", doc).stdout.toString()).toBe("INSTALL_K3S_EXEC\nINSTALL_K3S_VERSION\n");
    expect(withAgentFunctions("json_get a", '{"a": "unterminated').status).toBe(2);
  });
});

describe("agent json_str", () => {
  it.each(strings.map((s) => [JSON.stringify(s).slice(0, 30), s]))(
    "%s → a JSON string that parses back (control characters other than tab and newline dropped)",
    (_l, value) => {
      const r = withAgentFunctions('json_str "$(cat)"', value);
      expect(r.status).toBe(0);
      // $(cat) drops trailing newlines and the writer drops CR: that is what the agent sends.
      const expected = value.replace(/\n+$/, "").replace(/\r/g, "");
      expect(JSON.parse(r.stdout.toString("utf8"))).toBe(expected);
    },
  );
});

describe("agent systemd unit", () => {
  it("systemd-analyze verify → no complaint but the agent not being installed on this host", () => {
    requireTools({ "systemd-analyze": "systemd" });
    const file = join(testTempDir("unit"), "edgejoin-agent.service");
    writeFileSync(file, readFileSync(unit));
    const r = spawnSync("systemd-analyze", ["verify", "--man=no", file], { encoding: "utf8", timeout: 30_000 });
    if (r.error) throw r.error;
    const complaints = r.stderr.split("\n").filter((l) => l.trim() !== "" && !l.includes(`Command ${agentPaths.script} is not executable`));
    expect(complaints).toEqual([]);
  });

  it("the unit runs the agent where user-data puts it and stops once the machine joined", () => {
    const text = readFileSync(unit, "utf8");
    expect(text).toContain(`ExecStart=${agentPaths.script}\n`);
    expect(text).toContain(`ConditionPathExists=!${agentPaths.stateDir}/joined\n`);
    expect(text).toContain("RestartPreventExitStatus=3\n");
  });
});
