/**
 * Where a machine fetches its installer (kernel, initrds, ISO). Paths in a cluster's installer
 * profile are relative to edgejoin's `/artifacts/`; a file the artifacts folder lacks is fetched
 * from the profile's `mirror_url` (same relative path) when one is set. Absolute URLs stay as given.
 */
import type { InstallerProfile } from "../../db/schema.js";
import { ContainedDir } from "./contained-dir.js";

const absolute = /^[a-z][a-z0-9+.-]*:\/\//i;

/** The profile with every installer URL made absolute: /artifacts/ when the file is there, else the mirror. */
export function resolveInstallerUrls(installer: InstallerProfile, opts: { publicUrl: string; artifactsDir: string }): InstallerProfile {
  const artifacts = new ContainedDir(opts.artifactsDir);
  const mirror = installer.mirror_url?.replace(/\/+$/, "");
  const resolve = (url: string): string => {
    if (absolute.test(url)) return url;
    const relative = url.replace(/^\/+/, "");
    const file = relative.replace(/[?#].*$/, "");
    if (!mirror || artifacts.locateSync(file).kind === "file") return `${opts.publicUrl}/artifacts/${relative}`;
    return `${mirror}/${relative}`;
  };
  return {
    ...installer,
    kernel_url: resolve(installer.kernel_url),
    initrd_urls: installer.initrd_urls.map(resolve),
    iso_url: installer.iso_url === null ? null : resolve(installer.iso_url),
  };
}
