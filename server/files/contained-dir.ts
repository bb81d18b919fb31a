/**
 * Path containment as a type: a `ContainedDir` is the only way to turn a name a client sent into
 * something that can be opened, and every name is resolved and checked against the root first.
 * Used by the TFTP boot folder and the /artifacts route.
 */
import { constants, realpathSync, statSync } from "node:fs";
import { open, realpath, type FileHandle } from "node:fs/promises";
import { isAbsolute, join, sep } from "node:path";

declare const containedBrand: unique symbol;

/** A real (symlink-free) path proven to lie inside a ContainedDir's root. */
export type ContainedPath = string & { readonly [containedBrand]: true };

/** Why a requested name was refused before anything was opened. */
export type Refusal = "nul" | "absolute" | "traversal" | "escapes-root" | "not-a-file" | "unreadable";

/** What `locate` finds for a requested name. */
export type Located = { kind: "file"; path: ContainedPath; size: number } | { kind: "refused"; reason: Refusal } | { kind: "missing" };

/** What `open` finds for a requested name; the caller owns (and must close) `handle`. */
export type Opened = { kind: "file"; path: ContainedPath; size: number; handle: FileHandle } | { kind: "refused"; reason: Refusal } | { kind: "missing" };

/** The checks that need no file system: a name must be relative, NUL-free and never climb. */
export function refuseByName(requested: string): Refusal | undefined {
  if (requested.includes("\0")) return "nul";
  if (isAbsolute(requested)) return "absolute";
  // Any `..` segment is refused, even one that would stay inside (`a/../b`): no client needs it.
  if (requested.split("/").includes("..")) return "traversal";
  return undefined;
}

function inside(realRoot: string, real: string): boolean {
  return real === realRoot || real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep);
}

function failureOf(err: unknown): Located & { kind: "refused" | "missing" } {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ENOTDIR") return { kind: "missing" };
  // ELOOP (a link cycle), EACCES and the like: something is there, and we will not serve it.
  return { kind: "refused", reason: "unreadable" };
}

/** A folder whose files may be read by name, never anything outside it. */
export class ContainedDir {
  /** `root` may itself be (or lie under) a symlink: containment is checked against its real path. */
  constructor(readonly root: string) {}

  /** Resolve `requested` (relative to the root) without opening it; synchronous, for start-up reports. */
  locateSync(requested: string): Located {
    const byName = refuseByName(requested);
    if (byName) return { kind: "refused", reason: byName };
    let realRoot: string;
    let real: string;
    try {
      realRoot = realpathSync(this.root);
      real = realpathSync(join(realRoot, requested));
    } catch (err) {
      return failureOf(err);
    }
    if (!inside(realRoot, real)) return { kind: "refused", reason: "escapes-root" };
    try {
      const st = statSync(real);
      if (!st.isFile()) return { kind: "refused", reason: "not-a-file" };
      return { kind: "file", path: real as ContainedPath, size: st.size };
    } catch (err) {
      return failureOf(err);
    }
  }

  /** Resolve `requested` and open it read-only; only a regular file inside the root is ever opened. */
  async open(requested: string): Promise<Opened> {
    const byName = refuseByName(requested);
    if (byName) return { kind: "refused", reason: byName };
    let real: string;
    try {
      // The root is resolved per call so a root that is replaced (or created) while serving still holds.
      const realRoot = await realpath(this.root);
      real = await realpath(join(realRoot, requested));
      if (!inside(realRoot, real)) return { kind: "refused", reason: "escapes-root" };
    } catch (err) {
      return failureOf(err);
    }
    let handle: FileHandle;
    try {
      // NOFOLLOW: the checked path is already link-free, so a link appearing there now is a swap.
      // NONBLOCK: opening a FIFO would otherwise hang a thread-pool worker until a writer appears.
      handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      // ELOOP under NOFOLLOW: the last component became a link after it was checked.
      if ((err as NodeJS.ErrnoException).code === "ELOOP") return { kind: "refused", reason: "escapes-root" };
      return failureOf(err);
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) {
        await handle.close();
        return { kind: "refused", reason: "not-a-file" };
      }
      return { kind: "file", path: real as ContainedPath, size: st.size, handle };
    } catch (err) {
      await handle.close().catch(() => undefined);
      return failureOf(err);
    }
  }
}
