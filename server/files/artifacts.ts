/**
 * The admin's artifacts folder as machines see it: `/artifacts/<path>` URLs for installer files
 * and k3s, and whether a file is there. The one place an artifact URL is built.
 */
import type { InstallerProfile } from "../../db/schema.js";
import { existsSync } from "node:fs";
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

  /**
   * True when the artifacts folder itself exists. `main` creates it at start, so in a running
   * edgejoin it always does; an app built by a test without one skips the missing-file checks.
   */
  exists(): boolean {
    // Once there, it stays (main made it): no disk lookup per boot request after the first.
    if (!this.rootSeen) this.rootSeen = existsSync(this.dir.root);
    return this.rootSeen;
  }

  private rootSeen = false;

  /** Paths found to be files, and when: `/boot.ipxe` asks for the installer's files on every request. */
  private readonly found = new Map<string, { at: number; checking: boolean }>();

  /**
   * True when the folder holds that file (contained: a path that leaves the folder is never there).
   * A file once found is answered from memory; after a second the next ask re-checks it in the
   * background (async), so a boot storm does no synchronous disk lookup per request. A missing
   * file is looked up every time, so one an admin adds is seen at once.
   */
  has(relative: string): boolean {
    const path = relative.replace(/^\/+/, "").replace(/[?#].*$/, "");
    const known = this.found.get(path);
    if (known) {
      if (!known.checking && performance.now() - known.at > 1_000) {
        known.checking = true;
        void this.dir.open(path).then(
          (r) => {
            if (r.kind === "file") {
              void r.handle.close();
              known.at = performance.now();
              known.checking = false;
            } else this.found.delete(path);
          },
          () => this.found.delete(path),
        );
      }
      return true;
    }
    const isFile = this.dir.locateSync(path).kind === "file";
    // Bounded: installer and k3s paths are few; anything past that is not worth remembering.
    if (isFile && this.found.size < 1_024) this.found.set(path, { at: performance.now(), checking: false });
    return isFile;
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
