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
