/**
 * The admin's artifacts folder as machines see it: `/artifacts/<path>` URLs for installer files
 * and k3s, and whether a file is there. The one place an artifact URL is built.
 */
import type { InstallerProfile } from "../../db/schema.js";
import { ContainedDir } from "./contained-dir.js";

const absolute = /^[a-z][a-z0-9+.-]*:\/\//i;

/** Artifacts under one folder, served at `<publicUrl>/artifacts/`. */
export class Artifacts {
  private readonly dir: ContainedDir;

  constructor(
    root: string,
    private readonly publicUrl: string,
  ) {
    this.dir = new ContainedDir(root);
  }

  /** The URL of a path relative to the artifacts folder (`/`-separated); a query or fragment is kept as given. */
  url(relative: string): string {
    const [path = "", rest = ""] = relative.replace(/^\/+/, "").split(/(?=[?#])/, 2);
    return `${this.publicUrl}/artifacts/${path.split("/").map(encodeURIComponent).join("/")}${rest}`;
  }

  /** True when the folder holds that file (contained: a path that leaves the folder is never there). */
  has(relative: string): boolean {
    return this.dir.locateSync(relative.replace(/^\/+/, "").replace(/[?#].*$/, "")).kind === "file";
  }

  /**
   * A cluster's installer with every URL made absolute. Paths are relative to `/artifacts/`; a
   * file the folder lacks comes from the profile's `mirror_url` (same relative path) when one
   * is set. Absolute URLs stay as given.
   */
  resolveInstaller(installer: InstallerProfile): InstallerProfile {
    const mirror = installer.mirror_url?.replace(/\/+$/, "");
    const resolve = (url: string): string => {
      if (absolute.test(url)) return url;
      if (!mirror || this.has(url)) return this.url(url);
      return `${mirror}/${url.replace(/^\/+/, "")}`;
    };
    return {
      ...installer,
      kernel_url: resolve(installer.kernel_url),
      initrd_urls: installer.initrd_urls.map(resolve),
      iso_url: installer.iso_url === null ? null : resolve(installer.iso_url),
    };
  }
}
