/** `GET /api/v1/nodes/:id/syslog`: what a machine logged while booting and installing (admin, paged, oldest first). */
import { Hono } from "hono";
import type { AppEnv } from "../context.js";
import { listSyslog } from "../store/syslog.js";
import { adminAuth } from "./middleware/admin-auth.js";
import { pageBody, pagedQuery, pageRequest } from "./middleware/pagination.js";
import { machineFromRef, machineRefParam } from "./middleware/machine-ref.js";
import { validate } from "./middleware/validate.js";

const severities = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"] as const;

export const syslogRoutes = new Hono<AppEnv>().get(
  "/api/v1/nodes/:id/syslog",
  adminAuth,
  validate("param", machineRefParam),
  validate("query", pagedQuery({})),
  (c) => {
    const { db } = c.var.deps;
    // By id, MAC or serial, as every node route.
    const { id } = machineFromRef(db, c.req.valid("param").id);
    const page = listSyslog(db, id, pageRequest(c.req.valid("query")));
    return c.json(
      pageBody("lines", page, (r) => ({
        id: r.id,
        at: new Date(r.receivedAt).toISOString(),
        source_ip: r.sourceIp,
        facility: r.facility,
        severity: severities[r.severity] ?? String(r.severity),
        sent_at: r.sentAt,
        hostname: r.hostname,
        app: r.app,
        message: r.message,
      })),
    );
  },
);
