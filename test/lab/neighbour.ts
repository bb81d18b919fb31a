/**
 * The neighbour of issue 9 in the machine lab: a second QEMU guest on the site LAN (the lab
 * guest image booted straight from its disk, never PXE, its address from the site's DHCP) whose
 * cloud-init runs `neighbour/neighbour.sh`. Once up it reads the victim's seed and keeps its
 * token (`captured()`); it waits for a signal file in `/artifacts/`, then fetches the victim's seed
 * again and enrolls as the victim, with that seed's token (or its own) and with the captured one,
 * and prints what it got on its console.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { run, waitFor, type Machine } from "../helpers/netlab.js";
import type { MachineLab } from "./scenario.js";

const script = fileURLToPath(new URL("./neighbour/neighbour.sh", import.meta.url));

/** What the neighbour's enroll as the victim got. */
export type NeighbourResult = {
  /** The neighbour's own address on the LAN. */
  ip: string;
  /** Whether the victim's seed gave it a bootstrap token. */
  tokenInSeed: boolean;
  /** What `/boot.ipxe` answered its sighting in the victim's name (another UUID, serial and arch). */
  bootForVictim: "local-disk" | "installer" | "other";
  /** HTTP status of its enroll (000: no answer) and the answer's body. */
  status: number;
  body: Record<string, unknown> | string;
  /** Its enroll as the victim with the token it read from the victim's seed before the victim enrolled. */
  captured: { status: number; body: Record<string, unknown> | string } | undefined;
};

/** A console field `body=...` up to ` curl=` or the end of the line, as JSON when it parses. */
function bodyField(line: string): Record<string, unknown> | string {
  const raw = /body=(.*?)(?: curl=|$)/.exec(line)?.[1] ?? "";
  try {
    return JSON.parse(raw) as Record<string, unknown>;
  } catch {
    // Not JSON: kept as text for the report.
    return raw;
  }
}

/** A neighbour guest, booted and waiting for `attack()`. */
export type Neighbour = {
  machine: Machine;
  /** Wait until it is up and has read the victim's seed; whether that seed held a token. */
  captured(): Promise<boolean>;
  attack(): Promise<NeighbourResult>;
  stop(): Promise<void>;
};

/** Boot the neighbour on tap `tap`; it plays `victimMac` once `attack()` raises the signal. */
export async function bootNeighbour(ml: MachineLab, opts: { victimMac: string; tap: number }): Promise<Neighbour> {
  const artifacts = join(ml.lab.path("artifacts"), "lab-neighbour");
  mkdirSync(artifacts, { recursive: true });
  const userData = {
    write_files: [{ path: "/usr/local/sbin/edgejoin-neighbour", permissions: "0755", content: readFileSync(script, "utf8") }],
    runcmd: [["/usr/local/sbin/edgejoin-neighbour", opts.victimMac, ml.site.publicUrl]],
  };
  writeFileSync(join(artifacts, "user-data"), `#cloud-config\n${stringify(userData)}`);
  writeFileSync(join(artifacts, "meta-data"), "instance-id: edgejoin-lab-neighbour\nlocal-hostname: neighbour\n");
  // A 404 here costs ten retries of cloud-init's.
  writeFileSync(join(artifacts, "vendor-data"), "");

  // Its disk without a boot index: QEMU gives `-kernel`'s loader boot index 0 itself.
  const disk = ml.lab.path("neighbour.overlay.qcow2");
  await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", ml.image.rootfs, "-F", "raw", disk]);
  const machine = await ml.lab.machine({
    name: "neighbour",
    ns: ml.site.lan,
    tap: ml.site.taps[opts.tap]!,
    mac: "52:54:00:1a:b0:99",
    // SeaBIOS loads the kernel itself: no PXE, so edgejoin never sees this machine boot.
    firmware: "bios",
    bootFrom: "disk",
    memoryMb: 512,
    extraArgs: [
      "-drive",
      `file=${disk},format=qcow2,if=virtio`,
      "-kernel",
      ml.image.kernel,
      "-initrd",
      ml.image.initrd,
      "-append",
      `root=/dev/vda console=ttyS0 ds=nocloud-net;s=${ml.site.publicUrl}/artifacts/lab-neighbour/`,
    ],
  });
  ml.watch.powerOn(machine);
  const dies = () => ml.site.edgejoin.process.death() ?? machine.process.death();

  const captured = async () => {
    const line = await waitFor(
      "the neighbour to be up and to have read the victim's seed",
      () => /edgejoin-neighbour: captured: ([^\r\n]*)/.exec(machine.serial())?.[1],
      {
        timeoutMs: 300_000,
        intervalMs: 500,
        failIf: dies,
      },
    );
    return /token yes/.test(line);
  };
  return {
    machine,
    captured,
    attack: async () => {
      const tokenCaptured = await captured();
      writeFileSync(join(artifacts, "go"), "go\n");
      ml.watch.note(machine.mac, "signalled: play the victim");
      const line = await waitFor("the neighbour's enroll as the victim", () => /edgejoin-neighbour: RESULT ([^\r\n]*)/.exec(machine.serial())?.[1], {
        timeoutMs: 120_000,
        intervalMs: 500,
        failIf: dies,
      });
      ml.watch.note(machine.mac, `enroll as the victim: ${line.slice(0, 120)}`);
      const field = (name: string) => new RegExp(`${name}=(\\S*)`).exec(line)?.[1] ?? "";
      if (!/^\d{3}$/.test(field("status"))) throw new Error(`the neighbour's console line does not parse: ${line}`);
      // Printed before RESULT, so already on the console.
      const capturedLine = /edgejoin-neighbour: CAPTURED ([^\r\n]*)/.exec(machine.serial())?.[1] ?? "";
      const capturedStatus = /status=(\d{3})/.exec(capturedLine)?.[1];
      if (tokenCaptured && capturedStatus === undefined)
        throw new Error(`the neighbour's enroll with the captured token did not report a status: ${capturedLine}`);
      ml.watch.note(machine.mac, `enroll as the victim with the captured token: ${capturedLine.slice(0, 120)}`);
      return {
        ip: field("ip"),
        tokenInSeed: field("token") === "yes",
        bootForVictim: field("boot") as NeighbourResult["bootForVictim"],
        status: Number(field("status")),
        body: bodyField(line),
        captured: capturedStatus === undefined ? undefined : { status: Number(capturedStatus), body: bodyField(capturedLine) },
      };
    },
    stop: () => machine.stop(),
  };
}
