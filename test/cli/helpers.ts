/** The installed `edgejoin` command, run as an admin runs it: its own process, environment and exit code. */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../../bin/edgejoin.js", import.meta.url));
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** What one run printed and how it ended. */
export type CliRun = { code: number | null; stdout: string; stderr: string };

/** Run `edgejoin ...args` with PATH, HOME and `env` only; killed by its PID after `ms`. */
export function edgejoin(args: string[], env: Record<string, string>, ms = 60_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`edgejoin ${args.join(" ")} did not finish within ${ms / 1000} s:\n${stdout}\n${stderr}`));
    }, ms);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The rows of an aligned table (header first), each split on runs of two or more spaces. */
export function tableRows(text: string): string[][] {
  return text
    .trimEnd()
    .split("\n")
    .map((line) => line.split(/ {2,}/));
}
