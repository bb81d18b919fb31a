/**
 * `GET`/`HEAD /ipxe/<binary>`: the iPXE binaries TFTP serves, over HTTP, for UEFI HTTP boot
 * (firmware whose DHCP vendor class is `HTTPClient` is handed this URL). Same sources as TFTP:
 * the boot folder first (contained: its links may not leave it), then Debian's iPXE folder (whose
 * own links, e.g. ipxe.efi → /boot/ipxe.efi, are followed on purpose).
 */
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { Hono } from "hono";
import type { AppEnv } from "../context.js";
import { ARM64_BINARY } from "../dhcp/proxy.js";
import { ApiError } from "../errors.js";
import { ContainedDir } from "../files/contained-dir.js";

/** The only names served: a fixed list, so this route never becomes a second window on the boot folder. */
const BINARIES = ["undionly.kpxe", "ipxe.efi", "snponly.efi", ARM64_BINARY];

async function openBinary(bootDir: string, ipxeDir: string, name: string): Promise<{ handle: FileHandle; size: number } | undefined> {
  const fromBoot = await new ContainedDir(bootDir).open(name);
  if (fromBoot.kind === "file") return { handle: fromBoot.handle, size: fromBoot.size };
  // A refused link in the boot folder is not replaced by the system's copy: the operator meant that file.
  if (fromBoot.kind === "refused") return undefined;
  let handle: FileHandle;
  try {
    handle = await open(join(ipxeDir, name), constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  const st = await handle.stat().catch(() => undefined);
  if (!st?.isFile()) {
    await handle.close();
    return undefined;
  }
  return { handle, size: st.size };
}

/** iPXE binaries over HTTP for UEFI HTTP boot. */
export const ipxeBinaryRoutes = new Hono<AppEnv>().get("/ipxe/:name", async (c) => {
  const name = c.req.param("name");
  if (!BINARIES.includes(name)) throw new ApiError("not_found", `edgejoin serves only ${BINARIES.join(", ")} here`);
  const { bootDir, ipxeDir } = c.var.deps.config;
  const found = await openBinary(bootDir, ipxeDir, name);
  if (!found) throw new ApiError("not_found", `${name} is neither in the boot folder nor in ${ipxeDir}`);
  const headers = { "content-type": "application/efi", "content-length": String(found.size), "cache-control": "no-cache" };
  if (name.endsWith(".kpxe")) headers["content-type"] = "application/octet-stream";
  if (c.req.method === "HEAD") {
    await found.handle.close();
    return c.body(null, 200, headers);
  }
  return c.body(Readable.toWeb(found.handle.createReadStream()) as ReadableStream, 200, headers);
});
