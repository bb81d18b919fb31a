/**
 * Empty stand-ins for the default installer's kernel, initrd and ISO in an artifacts folder, so a
 * throw-away server (demo, bench, tests) answers `/boot.ipxe` with the install script and its
 * NoCloud seed, as a real site with the files in place does. Simulated machines never download them.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { defaultInstaller } from "../store/clusters.js";

/** Write an empty file at each relative path of the default installer under `artifactsDir`. */
export function placeInstallerStandIns(artifactsDir: string): void {
  const paths = [defaultInstaller.kernel_url, ...defaultInstaller.initrd_urls, ...(defaultInstaller.iso_url ? [defaultInstaller.iso_url] : [])];
  for (const p of paths.filter((x) => !/^[a-z]+:/.test(x))) {
    const file = join(artifactsDir, p);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, "");
  }
}
