/**
 * Does anything answer on ADDRESS:PORT now? One TCP connect, bounded in time, for warnings an admin
 * reads (a registration address nothing serves yet), never for a decision. Only IP addresses are
 * tried: a DNS name is what the machines' resolver says, which need not be edgejoin's, and a
 * lookup would tie up libuv's thread pool (shared with the database and file reads) at a site
 * whose DNS does not answer.
 */
import { connect, isIP } from "node:net";

/** True, false, or undefined when `host` is not an IP address (not checked). */
export async function answersTcp(host: string, port: number, timeoutMs = 500): Promise<boolean | undefined> {
  if (isIP(host) === 0) return undefined;
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** Why `url` cannot be fetched now (HTTP status or network error), or undefined when a HEAD answers 2xx within `timeoutMs`. */
export async function urlProblem(url: string, timeoutMs = 3_000): Promise<string | undefined> {
  try {
    const res = await fetch(url, { method: "HEAD", signal: AbortSignal.timeout(timeoutMs), redirect: "follow" });
    return res.ok ? undefined : `${res.status} ${res.statusText}`.trim();
  } catch (err) {
    const cause = (err as Error & { cause?: { code?: string } }).cause;
    return cause?.code ?? (err as Error).message;
  }
}

/**
 * Warn, one line per file, about installer files a cluster leaves to its `mirror_url` that the
 * mirror does not serve either: the machine's iPXE would fetch them from there and fail. Checked
 * one after another (a cluster names a few files), in the background of the change that asked.
 */
export async function warnUnservedAtMirror(
  logger: { warn(details: object, message: string): void },
  cluster: { name: string; mirrorUrl: string },
  paths: readonly string[],
  problemOf: (url: string) => Promise<string | undefined>,
): Promise<void> {
  const base = cluster.mirrorUrl.replace(/\/+$/, "");
  for (const path of paths) {
    const url = `${base}/${path}`;
    const problem = await problemOf(url);
    if (problem) {
      logger.warn(
        { cluster: cluster.name, path, url, problem },
        `cluster ${cluster.name}: ${path} is neither in the artifacts folder nor at its mirror ${url} (${problem})`,
      );
    }
  }
}
