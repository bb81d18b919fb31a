/**
 * Selection for NoCloud seed requests: the MAC is the path segment cloud-init was given in
 * `ds=nocloud-net;s=BASE/cloud-init/MAC/`. Parse it once, record the sighting (first sight →
 * `discovered`, as /boot.ipxe does) and put the machine in the context.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../context.js";
import { ApiError } from "../../errors.js";
import { parseMac } from "../../identity.js";
import { recordSighting } from "../../store/machines.js";

/** Puts `machine` in the context, or answers 422 `invalid_mac` having stored nothing. */
export const selectSeedMachine = createMiddleware<AppEnv>(async (c, next) => {
  const mac = parseMac(c.req.param("mac") ?? "");
  if (!mac) throw new ApiError("invalid_mac", "the MAC in the path must be six hex bytes, e.g. /cloud-init/52:54:00:12:34:56/user-data");
  const { db, clock, limits } = c.get("deps");
  const ip = c.get("sourceIp");
  const { machine } = recordSighting(
    db,
    { mac },
    { ip, now: clock(), via: "cloud-init" },
    { mayCreate: () => limits.mayCreateMachine(ip), mayAudit: (id) => limits.mayAuditRefusal(ip, id) },
  );
  c.set("machine", machine);
  await next();
});
