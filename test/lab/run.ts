/**
 * `npm run lab`: the machine lab's scenario for a person to watch. Prints each phase of each
 * machine as it happens (seconds since that machine's power-on), then the quorum table. Exit 0
 * when both lives ended as they should; on failure the run's logs stay under `.lab/runs/`.
 */
import { runOneMachineLife, runThreeServerQuorum } from "./lives.js";
import { openMachineLab, type MachineLab } from "./scenario.js";

const started = Date.now();
const say = (line: string) => process.stdout.write(`${line}\n`);
const problems: string[] = [];
let ml: MachineLab | undefined;

const stopOnSignal = (signal: NodeJS.Signals) => {
  say(`\n${signal}: cleaning up the lab`);
  void (ml?.close() ?? Promise.resolve()).finally(() => process.exit(130));
};
process.once("SIGINT", stopOnSignal);
process.once("SIGTERM", stopOnSignal);

try {
  ml = await openMachineLab({ taps: 5, onMark: (_mark, line) => say(line), log: (line) => say(`lab: ${line}`) });
  say(`lab: edgejoin at ${ml.site.publicUrl}, guest image ${ml.image.key}`);

  say("\n== one machine from blank disks through the stand-in installer, a neighbour enrolling as it, then a reboot ==");
  const life = await runOneMachineLife(ml);
  const { install, neighbour } = life;
  if (install.bootScripts.join(",") !== "installer,local-disk")
    problems.push(`m1's PXE boots ran ${install.bootScripts.join(", ")}, not installer then local disk`);
  if (install.installerRuns !== 1) problems.push(`the installer ran ${install.installerRuns} times on m1`);
  if (install.webhookStatuses.some((s) => s !== 202)) problems.push(`installer webhook statuses ${install.webhookStatuses.join(",")}`);
  if (neighbour.bootForVictim !== "local-disk") problems.push(`/boot.ipxe answered the neighbour's sighting of m1 with ${neighbour.bootForVictim}`);
  if (neighbour.status < 400 || neighbour.status >= 500 || neighbour.victimState !== "joined" || neighbour.quorumHealth !== "ok")
    problems.push(`neighbour enroll as m1: HTTP ${neighbour.status}, m1 ${neighbour.victimState}, quorum ${neighbour.quorumHealth}`);
  say(`m1 install: ${install.bootScripts.join(" → ")}, installer ran ${install.installerRuns}×, webhook ${install.webhookStatuses.join(",")}`);
  say(
    `neighbour ${neighbour.ip}: /boot.ipxe for m1 → ${neighbour.bootForVictim}; enrolled as m1 (token in seed: ${neighbour.tokenInSeed}) → HTTP ${neighbour.status} ${JSON.stringify(neighbour.body)}; m1 ${neighbour.victimState}, conflicts ${neighbour.conflicts?.length ?? "n/a"}, quorum ${neighbour.quorumHealth}`,
  );
  if (life.machine.state !== "joined" || life.machine.role !== "init") problems.push(`m1 ended ${life.machine.state} as ${life.machine.role}`);
  if (life.diskConfig !== life.renderedConfig) problems.push("m1's config.yaml on disk differs from what edgejoin renders for it");
  if (life.diskCaHash !== life.clusterCaHash) problems.push("m1's CA hash differs from the cluster's");
  say(
    `m1: ${life.machine.state} as ${life.machine.role}; config on disk ${life.diskConfig === life.renderedConfig ? "=" : "≠"} rendered; powering it on again`,
  );

  say("\n== three machines, a cluster of 3 servers (m1 reboots meanwhile) ==");
  const quorum = await runThreeServerQuorum(ml);
  if (quorum.quorum.health !== "ok") problems.push(`quorum health ${quorum.quorum.health}`);
  for (const r of quorum.releaseOrder) if (!(r.configAt > r.previousReadyAt)) problems.push(`${r.mac} got its config before ${r.afterMac} was ready`);
  if (!quorum.joinerTokensPinCa) problems.push("joining servers' tokens do not pin the init server's CA");

  const reboot = await life.reboot;
  if (reboot.bootScript !== "local-disk" || !reboot.bootedFromDisk)
    problems.push(`reboot ran ${reboot.bootScript}, booted from disk: ${reboot.bootedFromDisk}`);
  if (reboot.quorumHealth !== "ok") problems.push(`m1's cluster quorum ${reboot.quorumHealth} after its reboot`);
  if (reboot.enrollsAfterReboot.length > 0) problems.push(`after the reboot: ${reboot.enrollsAfterReboot.join(", ")}`);
  say(`m1 reboot → ${reboot.bootScript}, booted from its disk: ${reboot.bootedFromDisk}`);

  say(`\n${ml.watch.format()}`);
  say(`\n${quorum.quorumTable}`);
} catch (err) {
  problems.push((err as Error).message);
  if (ml) say(`\n${ml.watch.format()}`);
} finally {
  if (ml && problems.length > 0) say(`\nlogs, serial consoles and timelines kept in ${ml.keep()}`);
  await ml?.close();
}
say(`\nlab ${problems.length === 0 ? "passed" : "FAILED"} in ${Math.round((Date.now() - started) / 1000)} s`);
for (const p of problems) say(`  - ${p}`);
process.exit(problems.length === 0 ? 0 : 1);
