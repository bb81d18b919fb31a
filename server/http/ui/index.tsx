/**
 * The admin's console at /ui: server-rendered pages (hono/jsx, which escapes every value), one
 * stylesheet and one script from /ui/static, and plain HTML forms that post and redirect back.
 * Every page needs a session; every post needs the session's CSRF token (./session.ts).
 */
import { readFileSync } from "node:fs";
import { Hono } from "hono";
import { z } from "zod";
import { ApiError } from "../../errors.js";
import { approveMachine, reinstallMachine, rejectMachine, retireMachine } from "../../store/decisions.js";
import { consoleHeaders } from "../middleware/console-headers.js";
import { idParam } from "../middleware/validate.js";
import { approveBody } from "../schemas/decisions.js";
import { clusterView, dashboardView, machineView } from "./data.js";
import { Dashboard } from "./dashboard.js";
import type { Chrome } from "./layout.js";
import { ClusterPage, ErrorPage, MachinePage, SignIn } from "./pages.js";
import { requireSession, signIn, signInToken, signOut, type UiEnv } from "./session.js";

const staticFiles = new Map(
  [
    ["console.js", "text/javascript; charset=utf-8"],
    ["console.css", "text/css; charset=utf-8"],
  ].map(([name, type]) => [name!, { type: type!, body: readFileSync(new URL(`./static/${name}`, import.meta.url)) }]),
);

/**
 * A posted approve form as the admin API's approve body, checked with that same schema: the
 * console accepts exactly what `POST /api/v1/nodes/:id/approve` accepts.
 */
function approvalOf(form: Record<string, unknown>): z.output<typeof approveBody> {
  const text = (v: unknown) => (typeof v === "string" && v.trim() !== "" ? v.trim() : undefined);
  const cluster = text(form.cluster_id);
  const parsed = approveBody.safeParse({
    cluster_id: cluster !== undefined && /^\d{1,15}$/.test(cluster) ? Number(cluster) : cluster,
    hostname: text(form.hostname),
    dismiss_conflicts: form.dismiss_conflicts === "true",
  });
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new ApiError("validation_failed", `${i.path.join(".") || "form"}: ${i.message}`);
  }
  return parsed.data;
}

/** The session acts as its admin token, audited like an API call with that token: `admin:<name>`. */
const actorOf = (c: { var: UiEnv["Variables"] }) => `admin:${c.var.session.tokenName}`;
const chromeOf = (c: { var: UiEnv["Variables"] }): Chrome => ({ tokenName: c.var.session.tokenName, csrf: c.var.session.csrfToken });
const notice = (q: string | undefined) => (q ? q.slice(0, 200) : undefined);
const back = (to: string, text: string) => `${to}?done=${encodeURIComponent(text)}`;

/** The console's routes. */
export const uiRoutes = new Hono<UiEnv>()
  .use("/ui", consoleHeaders)
  .use("/ui/*", consoleHeaders)
  .get("/ui/static/:file", (c) => {
    const f = staticFiles.get(c.req.param("file"));
    if (!f) throw new ApiError("not_found", "no such console file");
    return c.body(new Uint8Array(f.body), 200, { "content-type": f.type, "cache-control": "no-cache" });
  })
  .get("/ui/login", (c) => c.html(<SignIn csrf={signInToken(c)} />))
  .post("/ui/login", async (c) => {
    const body = await c.req.parseBody();
    const token = typeof body.token === "string" ? body.token : "";
    const name = signIn(c, { token, csrf: typeof body._csrf === "string" ? body._csrf : undefined });
    if (name === undefined) return c.html(<SignIn csrf={signInToken(c)} refused />, 401);
    return c.redirect("/ui", 303);
  })
  .post("/ui/logout", requireSession, (c) => {
    signOut(c);
    return c.redirect("/ui/login", 303);
  })
  .get("/ui", requireSession, (c) => c.html(<Dashboard v={dashboardView(c.var.deps, chromeOf(c), notice(c.req.query("done")))} />))
  .get("/ui/machines/:id", requireSession, (c) => {
    const { id } = idParam.parse(c.req.param());
    const v = machineView(c.var.deps, chromeOf(c), id, notice(c.req.query("done")));
    if (!v) throw new ApiError("not_found", `no machine with id ${id}`);
    return c.html(<MachinePage v={v} />);
  })
  .get("/ui/clusters/:id", requireSession, (c) => {
    const { id } = idParam.parse(c.req.param());
    const v = clusterView(c.var.deps, id);
    if (!v) throw new ApiError("not_found", `no cluster with id ${id}`);
    return c.html(<ClusterPage chrome={chromeOf(c)} cluster={v.cluster} quorum={v.quorum} rules={v.rules} preRegistrations={v.preRegistrations} />);
  })
  .post("/ui/machines/approve", requireSession, async (c) => {
    const body = await c.req.parseBody({ all: true });
    const ids = [body.ids ?? []].flat().map((v) => (typeof v === "string" && /^[1-9]\d{0,14}$/.test(v) ? Number(v) : Number.NaN));
    if (ids.length === 0 || ids.some(Number.isNaN)) throw new ApiError("validation_failed", "tick at least one machine to approve");
    const form = approvalOf({ cluster_id: body.cluster_id });
    const { db, clock } = c.var.deps;
    const refused: string[] = [];
    for (const id of ids.slice(0, 1000)) {
      try {
        approveMachine(db, id, { clusterId: form.cluster_id, role: form.role }, { actor: actorOf(c), sourceIp: c.var.sourceIp, now: clock() });
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        refused.push(`${id}: ${err.message}`);
      }
    }
    const done = `approved ${ids.length - refused.length} of ${ids.length}${refused.length ? `; refused ${refused.join("; ")}` : ""}`;
    return c.redirect(back("/ui", done), 303);
  })
  .post("/ui/machines/:id/:decision{approve|reject|retire|reinstall}", requireSession, async (c) => {
    const { id } = idParam.parse({ id: c.req.param("id") });
    const decision = c.req.param("decision");
    const { db, clock } = c.var.deps;
    const who = { actor: actorOf(c), sourceIp: c.var.sourceIp, now: clock() };
    const body = await c.req.parseBody();
    let m: { mac: string; state: string };
    if (decision === "approve") {
      const form = approvalOf(body);
      m = approveMachine(db, id, { clusterId: form.cluster_id, role: form.role, hostname: form.hostname, dismissConflicts: form.dismiss_conflicts }, who);
    } else if (decision === "reject") {
      m = rejectMachine(db, id, who);
    } else if (decision === "reinstall") {
      m = reinstallMachine(db, id, who);
    } else {
      m = retireMachine(db, id, who);
    }
    // Back where the form was (no Referer: the console sends none).
    const to = body.from === "machine" ? `/ui/machines/${id}` : "/ui";
    return c.redirect(back(to, `${m.mac} is ${m.state}`), 303);
  })
  .onError((err, c) => {
    const e = err instanceof ApiError ? err : err instanceof z.ZodError ? new ApiError("validation_failed", err.issues[0]?.message ?? "bad input") : undefined;
    if (!e) throw err;
    const chrome = c.var.session ? chromeOf(c) : undefined;
    return c.html(<ErrorPage status={e.status} code={e.code} message={e.message} chrome={chrome} />, e.status);
  });
