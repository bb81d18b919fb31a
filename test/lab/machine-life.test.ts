/**
 * The machine lab in CI: real UEFI firmware (OVMF's own PXE), edgejoin's TFTP and HTTP, a real
 * Debian kernel and cloud-init, the real enrollment agent from edgejoin's user-data, and k3s
 * stand-ins served from `/artifacts/`. One machine lives its whole life, from blank disks through
 * a stand-in installer, while a neighbour guest on the LAN tries to enroll as it, and reboots;
 * then three machines form a 3-server quorum. On failure everything is kept under `.lab/runs/`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  quorumJoinDeadlineMs,
  rebootDeadlineMs,
  runOneMachineLife,
  runThreeServerQuorum,
  type LifeReport,
  type NeighbourReport,
  type QuorumReport,
  type RebootReport,
} from "./lives.js";
import { openMachineLab, type MachineLab } from "./scenario.js";
import { guestBuildTimeoutMs } from "../helpers/guest-image.js";

describe("machine lab: whole lives under real firmware, kernel and cloud-init", () => {
  let ml: MachineLab | undefined;
  let failed = false;

  beforeAll(async () => {
    ml = await openMachineLab({ taps: 5, log: (line) => console.info(`lab: ${line}`) });
  }, guestBuildTimeoutMs + 120_000);

  afterAll(async () => {
    if (!ml) return;
    const timeline = ml.watch.format();
    if (failed) console.error(`machine lab: logs, serial consoles and timelines kept in ${ml.keep()}\n\n${timeline}`);
    else console.info(`machine lab timeline:\n\n${timeline}`);
    await ml.close();
  }, 60_000);

  const guarded = async <T>(body: () => Promise<T>): Promise<T> => {
    try {
      return await body();
    } catch (err) {
      failed = true;
      throw err;
    }
  };

  // The reboot runs beside the three-machine test (its first minute is firmware timeouts); the last test judges it.
  let reboot: Promise<RebootReport> | undefined;
  let neighbour: NeighbourReport | undefined;

  it("one machine, blank disks: PXE → stand-in installer writes the disks, reports finish SUCCESS, reboots PXE-first → local disk → installed system's cloud-init → agent enrolls → approved → k3s config written as rendered → joined as init server", async () => {
    const report: LifeReport = await guarded(() => runOneMachineLife(ml!));
    reboot = report.reboot;
    neighbour = report.neighbour;
    // The installer runs once per install: its final `finish` SUCCESS makes the next PXE boot local disk.
    expect(report.install.bootScripts, "what iPXE ran on each PXE boot of the first power-on").toEqual(["installer", "local-disk"]);
    expect(report.install.installerRuns).toBe(1);
    expect(report.install.webhookStatuses.length, "installer webhook posts").toBeGreaterThanOrEqual(4);
    expect(
      report.install.webhookStatuses.every((s) => s === 202),
      `webhook statuses ${report.install.webhookStatuses.join(",")}`,
    ).toBe(true);
    expect(report.install.installedMarker, "/etc/edgejoin-installed on the disk the installer wrote").toMatch(
      /^installed by edgejoin's stand-in installer at /,
    );
    expect(report.machine.state).toBe("joined");
    expect(report.machine.role).toBe("init");
    expect(report.diskConfig, "/etc/rancher/k3s/config.yaml on the guest's disk").toBe(report.renderedConfig);
    expect(report.renderedConfig).toMatch(/^cluster-init: true$/m);
    expect(report.diskCaHash, "sha256 of the guest's server-ca.crt").toBe(report.clusterCaHash);
    expect(report.agentStatus).toBe("joined init");
    // The installer, a second PXE boot (its firmware's HTTP boot timeout included) and the whole life under TCG.
  }, 1_200_000);

  it("three machines powered on 8 s apart, cluster of 3 servers → one init, two joining servers released one at a time, all joined, quorum ok", {
    timeout: quorumJoinDeadlineMs + 300_000,
  }, async () => {
    const report: QuorumReport = await guarded(() => runThreeServerQuorum(ml!));
    expect(report.roles.sort()).toEqual(["init", "server", "server"]);
    expect(report.states).toEqual(["joined", "joined", "joined"]);
    expect(report.approvedBy, "approved by the rule, nobody touched them").toEqual(["rule:trio-lab", "rule:trio-lab", "rule:trio-lab"]);
    // Each joining server got its config only after the server before it reported ready.
    for (const step of report.releaseOrder) {
      expect(step.configAt, `${step.mac} got its config after ${step.afterMac} was ready`).toBeGreaterThan(step.previousReadyAt);
    }
    expect(report.joinerTokensPinCa, "joining servers' tokens are K10<init CA hash>::server:…").toBe(true);
    expect(report.quorum.health).toBe("ok");
    expect(report.quorum.servers_ready).toBe(3);
  });

  it("the first machine powered on again → local-disk script, boots its own disk, no second enroll", { timeout: rebootDeadlineMs + 300_000 }, async () => {
    if (!reboot) throw new Error("the one-machine life did not get as far as its reboot");
    const r: RebootReport = await guarded(() => reboot!);
    expect(r.bootScript, "what iPXE ran on reboot").toBe("local-disk");
    expect(r.bootedFromDisk, "the OS came up from the machine's own disk").toBe(true);
    expect(r.enrollsAfterReboot, "enroll/seed/config requests after the reboot").toEqual([]);
    expect(r.stateAfter).toBe("joined");
    expect(r.quorumHealth, "m1's cluster after its reboot").toBe("ok");
  });

  it("a neighbour guest on the LAN enrolls as the joined machine, with its seed and with a token captured before it enrolled → refused (409 already_enrolled, a conflict), no credential; the machine stays joined, boots its disk, quorum ok", {
    timeout: rebootDeadlineMs + 300_000,
  }, async () => {
    if (!neighbour || !reboot) throw new Error("the one-machine life did not get as far as the neighbour's attempt");
    const n: NeighbourReport = neighbour;
    const body = typeof n.body === "string" ? {} : n.body;
    expect(n.ip, "the neighbour's own LAN address").toMatch(/^10\.77\.0\.\d+$/);
    expect(body.credential, `no credential for the neighbour (HTTP ${n.status}: ${JSON.stringify(n.body)})`).toBeUndefined();
    if (n.tokenInSeed) {
      // One enrollment per install: a second enroll is refused and shown to the admin.
      expect(n.status, `the neighbour's enroll as m1: ${JSON.stringify(n.body)}`).toBe(409);
      expect(body.error).toBe("already_enrolled");
      expect(
        n.conflicts?.map((c) => c.source_ip),
        "the refused enroll recorded as a conflict on m1, with the neighbour's address",
      ).toContain(n.ip);
    } else {
      // A joined machine's seed carries no bootstrap token: the neighbour enrolls in m1's name over
      // HTTPS with the token of its own seed, which names its own MAC, and is refused for that.
      expect(body.error, "the refusal must be the token's, not plain HTTP's").not.toBe("tls_required");
      expect([401, 403, 409], `the neighbour's enroll as m1 with its own token: HTTP ${n.status} ${JSON.stringify(n.body)}`).toContain(n.status);
    }
    // A token read from m1's seed before m1 enrolled (the neighbour was up first): valid, m1's MAC
    // and cluster. One enrollment per install: refused, nothing issued, a conflict for the admin.
    const captured = n.captured;
    if (!captured) throw new Error("the neighbour did not enroll with the token it captured before m1 enrolled");
    const capturedBody = typeof captured.body === "string" ? {} : captured.body;
    expect(captured.status, `the neighbour's enroll as m1 with the captured token: ${JSON.stringify(captured.body)}`).toBe(409);
    expect(capturedBody.error).toBe("already_enrolled");
    expect(capturedBody.credential).toBeUndefined();
    expect(
      n.conflicts?.map((c) => c.source_ip),
      "the refused enroll recorded as a conflict on m1, with the neighbour's address",
    ).toContain(n.ip);
    expect(n.bootForVictim, "/boot.ipxe for m1's MAC asked with another UUID, serial and arch").toBe("local-disk");
    expect(n.victimState).toBe("joined");
    expect(n.quorumHealth, "m1's cluster right after the attempt").toBe("ok");
    const r: RebootReport = await guarded(() => reboot!);
    expect(r.bootScript, "what iPXE ran on m1's reboot after the attempt").toBe("local-disk");
    expect(r.quorumHealth).toBe("ok");
  });
});
