/** The programs tests drive (curl, atftp, sh…): a missing one fails the test naming its Debian package; runs are time-bounded. */
import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Fail (never skip) when a program is missing; `tools` maps each command to the Debian package that provides it. */
export function requireTools(tools: Record<string, string>): void {
  // Some tools (mkfs.ext4) live in sbin, which a non-login PATH may leave out.
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin"].filter((d) => d !== "");
  for (const [tool, pkg] of Object.entries(tools)) {
    if (!dirs.some((d) => executable(join(d, tool)))) {
      throw new Error(`${tool} is missing: install the Debian package \`${pkg}\` (apt-get install ${pkg})`);
    }
  }
}

/** Run a program with a time bound; resolves with its exit code (-1 when it could not run or was killed) and output. */
export function run(command: string, args: string[], timeoutMs = 20_000): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, encoding: "buffer", maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr: stderr.toString() });
    });
  });
}
