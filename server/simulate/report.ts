/**
 * What `edgejoin simulate` prints: progress while it runs (a bar on a terminal, plain lines
 * otherwise), then one table per cluster and one per step.
 */
import cliProgress from "cli-progress";
import { steps, type MachineTrace, type Step } from "./machine.js";

/** Latency figures of one step, in milliseconds. */
export type StepFigures = { step: Step; count: number; p50: number; p99: number; max: number; retried: number };

/** One cluster's outcome. */
export type ClusterFigures = {
  cluster: string;
  desired: number;
  serversReady: number;
  agents: number;
  machines: number;
  joined: number;
  failures: number;
  problems: string[];
};

/** The nearest-rank percentile of sorted numbers (0 for none). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Per-step figures from the recorded timings, in step order, steps nobody walked left out. */
export function stepFigures(timings: Map<Step, number[]>, retried: Map<Step, number>): StepFigures[] {
  return steps.flatMap((step) => {
    const ms = (timings.get(step) ?? []).slice().sort((a, b) => a - b);
    if (ms.length === 0 && !retried.get(step)) return [];
    return [{ step, count: ms.length, p50: percentile(ms, 50), p99: percentile(ms, 99), max: ms.at(-1) ?? 0, retried: retried.get(step) ?? 0 }];
  });
}

/** A plain text table, columns padded, numbers right-aligned. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map((c) => (typeof c === "number" ? String(Math.round(c * 10) / 10) : c)))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[], isHead: boolean) =>
    r
      .map((c, i) => (i === 0 || isHead ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(cells[0]!, true), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map((r) => line(r, false))].join("\n");
}

/** The two end tables. */
export function renderTables(clusters: ClusterFigures[], figures: StepFigures[]): string {
  const c = table(
    ["cluster", "servers ready/desired", "agents", "joined/machines", "failures"],
    clusters.map((x) => [x.cluster, `${x.serversReady}/${x.desired}`, x.agents, `${x.joined}/${x.machines}`, x.failures]),
  );
  const s = table(
    ["step", "count", "p50 ms", "p99 ms", "max ms", "retried"],
    figures.map((f) => [f.step, f.count, f.p50, f.p99, f.max, f.retried]),
  );
  return `${c}\n\n${s}\n`;
}

/** Progress of the crowd: `tick` after each machine ends; `stop` before the tables. */
export type Progress = { tick(t: MachineTrace): void; stop(): void };

/** A bar on a terminal; otherwise a line at each tenth and for each failure. */
export function progress(total: number, out: NodeJS.WriteStream = process.stderr): Progress {
  let done = 0;
  let failed = 0;
  if (out.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream: out, format: "machines {bar} {value}/{total} done, {failed} failed, {eta_formatted} left", hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { failed: 0 });
    return {
      tick(t) {
        if (t.failure) failed++;
        bar.increment(1, { failed });
      },
      stop: () => bar.stop(),
    };
  }
  let nextLine = Math.ceil(total / 10);
  return {
    tick(t) {
      done++;
      if (t.failure) {
        failed++;
        out.write(`machine ${t.mac} failed: ${t.failure}\n`);
      }
      if (done >= nextLine || done === total) {
        out.write(`${done}/${total} machines done, ${failed} failed\n`);
        nextLine = done + Math.ceil(total / 10);
      }
    },
    stop() {},
  };
}
