/**
 * Preflight for the lab tier: build the lab's Debian guest image (cached under `.lab/cache/`)
 * before vitest starts, while the machine is otherwise idle. Built inside the run instead, it
 * shared two cores with the integration tier and debootstrap outran its deadline.
 *
 *   tsx test/preflight/guest-image.ts
 */
import { fileURLToPath } from "node:url";
import { ensureGuestImage } from "../helpers/guest-image.js";

async function main(): Promise<number> {
  const started = Date.now();
  try {
    const image = await ensureGuestImage({ log: (line) => console.error(`preflight: ${line}`) });
    console.error(`preflight: lab guest image ready in ${image.dir} (${Math.round((Date.now() - started) / 1000)} s)`);
    return 0;
  } catch (err) {
    console.error(`preflight: ${(err as Error).message}`);
    return 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = await main();
