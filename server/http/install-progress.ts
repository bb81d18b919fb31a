/**
 * The Ubuntu installer's webhook: `reporting` POSTs its events to
 * `POST /install-progress/:mac?token=…` and `error-commands` upload log tails to
 * `POST /install-progress/:mac/log?token=…&file=NAME`. The token is the machine's narrow
 * progress token (one per install); it can add installer events to that machine (the newest are
 * kept, within bounds) and, with the final `finish` SUCCESS, mark its install done; nothing else.
 */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { AppEnv, MachineRow } from "../context.js";
import { ApiError } from "../errors.js";
import { parseMac } from "../identity.js";
import { isFinalInstallerEvent } from "../lifecycle/machine.js";
import { machineForProgressToken, recordInstallerEvent } from "../store/install-progress.js";

/** One reporting event is small; the error-commands send at most 256 KiB of each log. */
const maxEventBytes = 64 * 1024;
const maxLogBytes = 300 * 1024;

const limit = (maxSize: number) =>
  bodyLimit({
    maxSize,
    onError: () => {
      throw new ApiError("body_too_large", `the request body is larger than ${maxSize / 1024} KiB`);
    },
  });

/** What subiquity's webhook handler posts (curtin's reporting event); extra fields are ignored. */
const installerEvent = z.object({
  name: z.string().max(1024),
  description: z.string().max(8192).optional(),
  event_type: z.string().regex(/^[a-z_]{1,32}$/, "event_type must be a short lower-case word such as start or finish"),
  origin: z.string().max(64).optional(),
  level: z.string().max(16).optional(),
  result: z.string().max(16).optional(),
  timestamp: z.number().optional(),
});

function authorize(c: Context<AppEnv>): MachineRow {
  const mac = parseMac(c.req.param("mac") ?? "");
  if (!mac) throw new ApiError("invalid_mac", "the MAC in the path must be six hex bytes");
  const token = c.req.query("token") ?? "";
  const machine = token.length > 0 && token.length <= 128 ? machineForProgressToken(c.var.deps.db, mac, token) : undefined;
  if (!machine) throw new ApiError("token_invalid", "this progress token does not belong to this machine's current install (a reinstall issues a new one)");
  return machine;
}

/** The installer's event webhook and its log upload. */
export const installProgressRoutes = new Hono<AppEnv>()
  .post("/install-progress/:mac", limit(maxEventBytes), async (c) => {
    const machine = authorize(c);
    // curtin posts JSON without an application/json content type: read the body as JSON regardless.
    let body: unknown;
    try {
      body = JSON.parse(await c.req.text());
    } catch {
      throw new ApiError("invalid_json", "the installer event must be a JSON object");
    }
    const parsed = installerEvent.safeParse(body);
    if (!parsed.success) throw new ApiError("validation_failed", parsed.error.issues[0]!.message);
    const e = parsed.data;
    const failed = e.event_type === "finish" && e.result === "FAIL";
    const detail = JSON.stringify({ name: e.name, description: e.description, result: e.result, level: e.level, origin: e.origin });
    const { db, clock } = c.var.deps;
    // The installer's final success ends the install: every later PXE boot of this machine gets its disk.
    const finished = isFinalInstallerEvent(e);
    const mayAudit = () => c.var.deps.limits.mayAuditRefusal(c.var.sourceIp, machine.id);
    recordInstallerEvent(db, machine, { type: e.event_type, detail, failed, finished }, { now: clock(), ip: c.var.sourceIp }, mayAudit);
    return c.json({ recorded: true }, 202);
  })
  .post("/install-progress/:mac/log", limit(maxLogBytes), async (c) => {
    const machine = authorize(c);
    const file = (c.req.query("file") ?? "installer.log").replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 64);
    const text = (await c.req.text()).slice(-maxLogBytes);
    const { db, clock } = c.var.deps;
    const mayAudit = () => c.var.deps.limits.mayAuditRefusal(c.var.sourceIp, machine.id);
    recordInstallerEvent(db, machine, { type: "log", detail: `${file}\n${text}`, failed: true }, { now: clock(), ip: c.var.sourceIp }, mayAudit);
    return c.json({ recorded: true }, 202);
  });
