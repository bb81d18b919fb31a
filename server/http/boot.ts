/** `GET /boot.ipxe`: the state-driven iPXE script. Selection lives in `selectMachine`. */
import { Hono } from "hono";
import type { AppEnv } from "../context.js";
import { type BootAnswer, bootAnswer } from "../lifecycle/machine.js";
import { missingInstallerFiles } from "../clusters/artifacts.js";
import { ApiError } from "../errors.js";
import { getCluster } from "../store/clusters.js";
import { approveAtBoot } from "../store/policy.js";
import { BootQueryError, selectMachine } from "./middleware/select-machine.js";

const script = { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" };

export const bootRoutes = new Hono<AppEnv>()
  .get("/boot.ipxe", async (c, next) => {
    // A bare request is what DHCP hands iPXE: answer a chain carrying the identity.
    if (new URL(c.req.url).search.length <= 1) return c.body(c.get("deps").ipxe.chain(), 200, script);
    return next();
  })
  .get("/boot.ipxe", selectMachine, (c) => {
    const { ipxe, db, artifacts } = c.get("deps");
    // What the machine is answered is kept for the request log line and its timeline (no re-reading the body).
    const answer = (rule: BootAnswer, body: string) => {
      c.set("bootScript", { answer: rule, script: body });
      return c.body(body, 200, script);
    };
    // In an `after_approval` cluster a pre-registration or rule can only approve at boot: before the install, not after it.
    const seen = c.get("machine");
    const holds = seen.state === "discovered" && seen.clusterId !== null && getCluster(db, seen.clusterId)?.installPolicy === "after_approval";
    const m = holds ? approveAtBoot(db, seen.id, { ip: c.get("sourceIp"), now: c.get("deps").clock() }) : seen;
    const cluster = m.clusterId === null ? undefined : getCluster(db, m.clusterId);
    // The installer runs once per install: whatever a LAN client sends, an installed or enrolled machine boots its disk.
    const rule = bootAnswer(m, cluster?.installPolicy);
    switch (rule) {
      case "local_disk":
        return answer(rule, ipxe.localDisk(m.mac));
      case "rejected":
        return answer(rule, ipxe.message(`machine ${m.mac} was rejected`, ["An admin rejected it. Approve it in edgejoin to install it."]));
      case "retired":
        return answer(rule, ipxe.message(`machine ${m.mac} is retired`, ["It left its cluster. An admin must approve it again to reinstall it."]));
      case "wait_for_approval":
        return answer(rule, ipxe.waitForApproval({ mac: m.mac, cluster: cluster!.name }));
      case "install":
        break;
    }
    if (!cluster) {
      return answer(rule, ipxe.message(`no cluster for machine ${m.mac}`, ["Create a default cluster in edgejoin, then reboot this machine."]));
    }
    // A kernel or initrd that is not there would 404 inside iPXE and loop "retrying" with nothing logged.
    const missing = artifacts.exists() ? missingInstallerFiles(cluster, (p) => artifacts.has(p)) : [];
    if (missing.length > 0) {
      c.get("deps").logger.warn({ cluster: cluster.name, mac: m.mac, missing }, `cannot install ${m.mac}: the artifacts folder lacks ${missing.join(", ")}`);
      const shown = missing[0]!.replace(/[^A-Za-z0-9 .,:()'/_-]/g, "_").slice(0, 120);
      return answer(
        rule,
        ipxe.message(`the installer of cluster ${cluster.name} is missing`, [
          `edgejoin has no ${shown} in its artifacts folder.`,
          "An admin must add it, then power this machine on again.",
        ]),
      );
    }
    try {
      return answer(rule, ipxe.install({ mac: m.mac, cluster: cluster.name, installer: artifacts.resolveInstaller(cluster.installer) }));
    } catch (err) {
      // A stored profile that fails the iPXE alphabet is never rendered; the console says why.
      c.get("deps").logger.error({ err, cluster: cluster.name }, "installer profile cannot be rendered as iPXE");
      return answer(
        rule,
        ipxe.message(`the installer profile of cluster ${cluster.name} is invalid`, ["An admin must fix it in edgejoin. Nothing was installed."]),
      );
    }
  })
  .onError((err, c) => {
    // iPXE runs only a 200 body: a refusal must still be a script, or the console shows nothing useful.
    if (err instanceof ApiError && err.code === "rate_limited") {
      c.header("x-edgejoin-error", err.code);
      return c.body(c.get("deps").ipxe.message("too many new machines right now", ["Nothing was recorded. Reboot this machine in a minute."]), 200, script);
    }
    if (err instanceof BootQueryError) {
      c.header("x-edgejoin-error", "invalid_boot_query");
      return c.body(c.get("deps").ipxe.message("cannot identify this machine", [err.message, "Nothing was recorded."]), 200, script);
    }
    throw err;
  });
