/**
 * Which tier (vitest project) runs each test file. vitest.config.ts builds its projects from these
 * lists and refuses to start when a test file is in no tier or in two; test/tiers.test.ts checks
 * the same. A new test file goes into exactly one list:
 *
 * - unit: Node only — routes through `app.request`, golden files, stores, rules, tokens,
 *   rendering. No root, no network namespace, no QEMU, no Debian tool, no spawned server.
 * - integration: real processes on loopback — a spawned edgejoin, storms over real HTTP, TFTP
 *   with curl and atftp, the agent run with sh, `cloud-init schema` and PyYAML.
 * - lab: QEMU machines in network namespaces (root).
 *
 * Entries are paths from the repository root; `*` matches within one folder, `**` any depth.
 */
import { readdirSync } from "node:fs";
import { join, relative, sep } from "node:path";

export const tiers = {
  unit: [
    "test/tiers.test.ts",
    "test/architecture/*.test.ts",
    "test/lifecycle/*.test.ts",
    "test/preflight/debian-packages.test.ts",
    "test/boot/boot.error.test.ts",
    "test/boot/boot.happy.test.ts",
    "test/cloud-init/artifacts.test.ts",
    "test/cloud-init/install-progress.test.ts",
    "test/cloud-init/render.security.test.ts",
    "test/cloud-init/seed.error.test.ts",
    "test/cloud-init/seed.happy.test.ts",
    "test/cloud-init/skeleton.test.ts",
    "test/artifacts/airgap.test.ts",
    "test/artifacts/conditional.test.ts",
    "test/artifacts/upstream.test.ts",
    "test/dhcp/captured.test.ts",
    "test/dhcp/proxy.test.ts",
    "test/syslog/parse.test.ts",
    "test/syslog/store.test.ts",
    "test/syslog/installer.test.ts",
    "test/enrollment/admin.error.test.ts",
    "test/enrollment/admin.happy.test.ts",
    "test/enrollment/enroll.error.test.ts",
    "test/enrollment/enroll.happy.test.ts",
    "test/enrollment/enroll.security.test.ts",
    "test/enrollment/keys.error.test.ts",
    "test/enrollment/keys.happy.test.ts",
    "test/enrollment/tokens.happy.test.ts",
    "test/policy/after-approval.test.ts",
    "test/policy/decide.test.ts",
    "test/policy/policy.api.test.ts",
    "test/quorum/clusters.api.test.ts",
    "test/quorum/k3s-config.test.ts",
    "test/quorum/life.test.ts",
    "test/quorum/lease-clock.test.ts",
    "test/quorum/seats.store.test.ts",
    "test/quorum/seats.test.ts",
    "test/security/*.app.test.ts",
    "test/openapi/openapi.test.ts",
    "test/server/config.test.ts",
    "test/server/db.test.ts",
    "test/server/health.test.ts",
    "test/server/readme.test.ts",
    "test/server/readme-site.test.ts",
    "test/tftp/contained-dir.test.ts",
    "test/ui/console.pages.test.ts",
    "test/ui/console.security.test.ts",
    "test/tls/ca.test.ts",
    "test/tls/node-api.test.ts",
    "test/tokens/*.test.ts",
    "test/timeline/*.test.ts",
    "test/kubeconfig/*.test.ts",
    "test/backup/*.test.ts",
  ],
  integration: [
    "test/cli/*.test.ts",
    "test/agent/agent-parts.test.ts",
    "test/agent/agent.test.ts",
    "test/cloud-init/render.cloud-init.test.ts",
    "test/cloud-init/schema.test.ts",
    "test/cloud-init/seed.cloud-init.test.ts",
    "test/artifacts/agent-airgap.test.ts",
    "test/artifacts/fetch.test.ts",
    "test/artifacts/warnings.test.ts",
    "test/dhcp/listener.test.ts",
    "test/syslog/receiver.test.ts",
    "test/syslog/metrics.test.ts",
    "test/enrollment/first-start.happy.test.ts",
    "test/policy/approval-race.test.ts",
    "test/metrics/operator-log.test.ts",
    "test/metrics/storm.test.ts",
    "test/quorum/contention.test.ts",
    "test/quorum/registration-address.test.ts",
    "test/quorum/storm.test.ts",
    "test/server/process.test.ts",
    "test/server/start.test.ts",
    "test/scale/*.test.ts",
    "test/simulate/*.test.ts",
    "test/tftp/tftp.happy.test.ts",
    "test/tftp/tftp.robustness.test.ts",
    "test/tftp/tftp.security.test.ts",
    "test/security/*.http.test.ts",
    "test/ui/console.browser.test.ts",
    "test/tls/https.test.ts",
  ],
  lab: ["test/e2e/netboot.test.ts", "test/lab/**/*.test.ts"],
} satisfies Record<string, string[]>;

export type Tier = keyof typeof tiers;
export type TierLists = Record<Tier, readonly string[]>;

/** A tier entry as a regular expression over repository-relative paths with `/` separators. */
export function entryPattern(entry: string): RegExp {
  const body = entry
    .split(/(\*\*\/|\*)/)
    .map((part) => (part === "**/" ? "(?:[^/]+/)*" : part === "*" ? "[^/]*" : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${body}$`);
}

/** Every `*.test.ts` under `test/`, relative to `root`, sorted. */
export function testFiles(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith(".test.ts")) found.push(relative(root, join(dir, e.name)).split(sep).join("/"));
    }
  };
  walk(join(root, "test"));
  return found.sort();
}

/** What is wrong with the tier lists for these files: files in no tier or in two, entries matching nothing. */
export function tierProblems(files: string[], lists: TierLists = tiers): string[] {
  const problems: string[] = [];
  const names = Object.keys(lists) as Tier[];
  for (const file of files) {
    const inTiers = names.filter((t) => lists[t].some((e) => entryPattern(e).test(file)));
    if (inTiers.length === 0) problems.push(`${file} is in no tier`);
    if (inTiers.length > 1) problems.push(`${file} is in more than one tier (${inTiers.join(", ")})`);
  }
  for (const t of names) {
    for (const e of lists[t]) if (!files.some((f) => entryPattern(e).test(f))) problems.push(`${t} entry ${e} matches no test file`);
  }
  return problems;
}

/** Throw one error listing every problem, naming the file to fix. */
export function assertTiers(root: string, lists: TierLists = tiers): void {
  const problems = tierProblems(testFiles(root), lists);
  if (problems.length > 0) {
    throw new Error(`test tiers: ${problems.join("; ")}. Put each test file in exactly one tier in test/tiers.ts.`);
  }
}
