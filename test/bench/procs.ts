/**
 * Processes the bench starts: each pinned to a CPU with taskset (servers on one core, load
 * clients on the other, when there are two), output kept in a file, stopped by its own PID.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { openSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

const hasTaskset = (() => {
  try {
    execFileSync("taskset", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

/** CPU for servers and CPU for load clients (the same one on a single-core machine). */
export const cpus = { server: "0", client: availableParallelism() > 1 ? "1" : "0" };

/** A started process: its PID and a stop that waits for it to exit. */
export type Proc = { child: ChildProcess; log: string; stop(): Promise<void>; exited(): boolean };

/** Start `cmd args` pinned to `cpu`, stdout and stderr into `log`. */
export function start(cmd: string, args: string[], o: { cpu: string; log: string; env?: Record<string, string | undefined> }): Proc {
  const [file, argv] = hasTaskset ? ["taskset", ["-c", o.cpu, cmd, ...args]] : [cmd, args];
  const fd = openSync(o.log, "a");
  const child = spawn(file as string, argv as string[], { cwd: repoRoot, stdio: ["ignore", fd, fd], env: o.env ?? process.env });
  let gone = false;
  const done = new Promise<void>((r) =>
    child.once("exit", () => {
      gone = true;
      r();
    }),
  );
  return {
    child,
    log: o.log,
    exited: () => gone,
    async stop() {
      if (gone) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await done;
      clearTimeout(timer);
    },
  };
}

/** Run `cmd args` pinned to `cpu` to its end (killed after `ms`); resolves with its stdout. */
export function run(cmd: string, args: string[], o: { cpu: string; ms: number; env?: Record<string, string | undefined> }): Promise<string> {
  const [file, argv] = hasTaskset ? ["taskset", ["-c", o.cpu, cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    const child = spawn(file as string, argv as string[], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"], env: o.env ?? process.env });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.stderr.on("data", (d: Buffer) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), o.ms);
    child.once("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${err.slice(-500)}`));
    });
  });
}

/** Wait until `url` answers (any status) or `ms` passes. */
export async function waitHttp(url: string, ms: number, proc?: Proc): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (proc?.exited()) throw new Error(`process for ${url} exited: see ${proc.log}`);
    try {
      await fetch(url, { signal: AbortSignal.timeout(1_000) });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not answer within ${ms / 1000} s`);
}

/** Resident set size of a process in MiB, from /proc. */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
}

/** CPU time (user + system, ms) a process and its children running now have used, from /proc (nginx answers from a worker). */
export function cpuMs(pid: number): number {
  const ticks = (p: number) => {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.split(" ");
      return Number(fields[11]) + Number(fields[12]);
    } catch {
      return 0;
    }
  };
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // no children listed
  }
  // USER_HZ is 100 on Linux: a tick is 10 ms.
  return [pid, ...children].reduce((sum, p) => sum + ticks(p), 0) * 10;
}
