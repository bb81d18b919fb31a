/**
 * Files what a machine fetched into its timeline, after the answer is made: which `/boot.ipxe`
 * script it got, each seed file, each config poll (a run of identical 202s becomes one line with
 * a count). Handlers stay unaware of it; recording never changes or fails the answer.
 */
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../context.js";
import { type ActivityKind, noteActivity } from "../../store/timeline.js";

/** The first `echo edgejoin: …` line of an iPXE script: what the machine's console showed. */
export function scriptSummary(script: string): string {
  const line = /^echo edgejoin: (.+)$/m.exec(script);
  if (line) return line[1]!.trim();
  return /^imgfetch /m.test(script) ? "chain: ask again with the machine's identity" : "script";
}

async function describe(c: Context<AppEnv>): Promise<{ kind: ActivityKind; detail: string } | undefined> {
  const path = c.req.path;
  const status = c.res.status;
  if (path === "/boot.ipxe") {
    const boot = c.get("bootScript");
    return boot ? { kind: "boot", detail: `/boot.ipxe: ${scriptSummary(boot.script)}` } : undefined;
  }
  const seed = /^\/cloud-init\/[^/]+\/([a-z-]+)\/?$/.exec(path);
  if (seed) return { kind: "seed", detail: `${seed[1]} ${status}` };
  if (path === "/api/v1/node/config") {
    const body = (await c.res
      .clone()
      .json()
      .catch(() => ({}))) as { reason?: unknown; role?: unknown; error?: unknown };
    // A 200 carries k3s secrets: only its role is read, nothing else is kept.
    if (status === 200) return { kind: "config", detail: `200 config released: role ${String(body.role)}` };
    if (status === 202) return { kind: "config", detail: `202 wait: ${String(body.reason)}` };
    return { kind: "config", detail: `${status} ${String(body.error ?? "refused")}` };
  }
  return undefined;
}

/** Record boot, seed and config requests of a known machine; everything else passes untouched. */
export const recordActivity = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  const machine = c.get("machine") as AppEnv["Variables"]["machine"] | undefined;
  if (!machine) return;
  const { db, clock, logger } = c.get("deps");
  try {
    const what = await describe(c);
    if (what) noteActivity(db, { machineId: machine.id, ip: c.get("sourceIp") || null, kind: what.kind, detail: what.detail, at: clock() });
  } catch (err) {
    // The machine got its answer; a timeline line is not worth failing it.
    logger.warn({ err: (err as Error).message, machineId: machine.id }, "could not record timeline activity");
  }
});
