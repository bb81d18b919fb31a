/**
 * The machine lab in CI: real UEFI firmware (OVMF's own PXE), edgejoin's TFTP and HTTP, a real
 * Debian kernel and cloud-init, the real enrollment agent from edgejoin's user-data, and k3s
 * stand-ins served from `/artifacts/`. One machine lives its whole life and reboots; then three
 * machines form a 3-server quorum. On failure everything is kept under `.lab/runs/`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runOneMachineLife, runThreeServerQuorum, type LifeReport, type QuorumReport, type RebootReport } from "./lives.js";
import { openMachineLab, type MachineLab } from "./scenario.js";

describe("machine lab: whole lives under real firmware, kernel and cloud-init", () => {
  let ml: MachineLab | undefined;
  let failed = false;

  beforeAll(async () => {
    ml = await openMachineLab({ taps: 4, log: (line) => console.info(`lab: ${line}`) });
  }, 600_000);

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

  it("one machine: PXE → iPXE → kernel + initrd → cloud-init seed → agent enrolls → approved → k3s config written as rendered → joined as init server", async () => {
    const report: LifeReport = await guarded(() => runOneMachineLife(ml!));
    reboot = report.reboot;
    expect(report.machine.state).toBe("joined");
    expect(report.machine.role).toBe("init");
    expect(report.diskConfig, "/etc/rancher/k3s/config.yaml on the guest's disk").toBe(report.renderedConfig);
    expect(report.renderedConfig).toMatch(/^cluster-init: true$/m);
    expect(report.diskCaHash, "sha256 of the guest's server-ca.crt").toBe(report.clusterCaHash);
    expect(report.agentStatus).toBe("joined init");
  }, 480_000);

  it("three machines powered on 8 s apart, cluster of 3 servers → one init, two joining servers released one at a time, all joined, quorum ok", async () => {
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
  }, 600_000);

  it("the first machine powered on again → local-disk script, boots its own disk, no second enroll", async () => {
    if (!reboot) throw new Error("the one-machine life did not get as far as its reboot");
    const r: RebootReport = await guarded(() => reboot!);
    expect(r.bootScript, "what iPXE ran on reboot").toBe("local-disk");
    expect(r.bootedFromDisk, "the OS came up from the machine's own disk").toBe(true);
    expect(r.enrollsAfterReboot, "enroll/seed/config requests after the reboot").toEqual([]);
    expect(r.stateAfter).toBe("joined");
  }, 360_000);
});
