/**
 * `npx tsx test/bench/profile.ts [--path /boot.ipxe?mac={mac}] [--seconds 10]`: edgejoin under
 * --cpu-prof, loaded by wrk (64 connections, MACs rotating) on one path, then the top functions by
 * self time. How the hot paths in the README's Performance section were found.
 */
import { readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";

type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number };
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[] };

/** Self time per function (name, file:line) as a share of all samples, top `n`, idle and GC included. */
export function topSelf(profile: Profile, n = 20): { share: number; fn: string }[] {
  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const counts = new Map<string, number>();
  for (const id of profile.samples) {
    const f = byId.get(id)!.callFrame;
    const file = f.url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*?\/(server|db)\//, "$1/");
    const key = `${f.functionName || "(anonymous)"} ${file}${file ? `:${f.lineNumber + 1}` : ""}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const total = profile.samples.length;
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([fn, c]) => ({ share: c / total, fn }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { dir: { type: "string" }, top: { type: "string", default: "25" } } });
  for (const f of readdirSync(values.dir!).filter((x) => x.endsWith(".cpuprofile"))) {
    const p = JSON.parse(readFileSync(`${values.dir}/${f}`, "utf8")) as Profile;
    process.stdout.write(`${f}\n`);
    for (const r of topSelf(p, Number(values.top))) process.stdout.write(`${(r.share * 100).toFixed(1).padStart(5)}%  ${r.fn}\n`);
  }
}
