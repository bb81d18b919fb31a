/**
 * `npx tsx test/bench/profile.ts [--path '/boot.ipxe?mac={mac}'] [--seconds 10] [--keep DIR]`:
 * edgejoin (10,000 machines seeded) under --cpu-prof, loaded by wrk (64 connections, MACs
 * rotating) on one path, then the functions that took the time: self time, and inclusive time of
 * edgejoin's own functions, both as a share of the busy samples. How the hot paths in the README's
 * Performance section were found.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchMacCount } from "./macs.js";

type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] };
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[] };

/** A function as the tables name it: name, then file:line (package-relative, or server/… and db/…). */
function frameKey(f: Node["callFrame"]): string {
  const file = f.url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*?\/(server|db)\//, "$1/");
  return `${f.functionName || "(anonymous)"} ${file}${file ? `:${f.lineNumber + 1}` : ""}`;
}

/** Self time per function as a share of the busy (non-idle) samples, top `n`. */
export function topSelf(profile: Profile, n = 20): { share: number; fn: string }[] {
  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const counts = new Map<string, number>();
  let busy = 0;
  for (const id of profile.samples) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === "(idle)") continue;
    busy++;
    const key = frameKey(f);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([fn, c]) => ({ share: c / busy, fn }));
}

/** Inclusive time (the function and what it called, counted once per sample) of functions whose key matches `only`. */
export function topInclusive(profile: Profile, only: RegExp, n = 30): { share: number; fn: string }[] {
  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const parent = new Map<number, number>();
  for (const x of profile.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
  const counts = new Map<string, number>();
  let busy = 0;
  for (const id of profile.samples) {
    if (byId.get(id)!.callFrame.functionName === "(idle)") continue;
    busy++;
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const key = frameKey(byId.get(at)!.callFrame);
      if (seen.has(key) || !only.test(key)) continue;
      seen.add(key);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([fn, c]) => ({ share: c / busy, fn }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      path: { type: "string", default: "/boot.ipxe?mac={mac}" },
      seconds: { type: "string", default: "10" },
      top: { type: "string", default: "25" },
      keep: { type: "string" },
    },
  });
  const { cleanUp, dir, log, startEdgejoin, stopAll, wrk } = await import("./targets.js");
  const profiles = values.keep ?? join(dir, "profiles");
  mkdirSync(profiles, { recursive: true });
  process.env.BENCH_CPU_PROF = profiles;
  try {
    const ej = await startEdgejoin("profiled", { seed: benchMacCount });
    // Only the loaded server's profile is read: the seeding start's is removed first.
    for (const f of readdirSync(profiles)) rmSync(join(profiles, f));
    await wrk(ej.url, values.path!, 3);
    const res = await wrk(ej.url, values.path!, Number(values.seconds));
    log(`${values.path}: ${Math.round(res.rps)} req/s, p99 ${res.p99_ms} ms`);
    await stopAll();
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread (tsx's loader is another).
    const mainFile = readdirSync(profiles).find((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f));
    if (!mainFile) throw new Error(`no main-thread profile in ${profiles}`);
    const main = JSON.parse(readFileSync(join(profiles, mainFile), "utf8")) as Profile;
    const top = Number(values.top);
    process.stdout.write(`self time, share of busy samples (${values.path}):\n`);
    for (const r of topSelf(main, top)) process.stdout.write(`${(r.share * 100).toFixed(1).padStart(5)}%  ${r.fn}\n`);
    process.stdout.write("\ninclusive time of edgejoin's functions:\n");
    for (const r of topInclusive(main, / (server|db)\//, top)) process.stdout.write(`${(r.share * 100).toFixed(1).padStart(5)}%  ${r.fn}\n`);
  } finally {
    await cleanUp();
  }
}
