/**
 * The README's one sentence, held to the code: protocol servers → handlers (`server/http/`) →
 * store transactions (`server/store/`) → pure core rules (`lifecycle/`, `quorum/`, `enrollment/`,
 * `render/`, `clusters/`). Imports are read as text from every source file.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

type Import = { file: string; target: string; typeOnly: boolean };

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.tsx?$/.test(e.name) && !e.name.endsWith(".d.ts") ? [join(dir, e.name).split(sep).join("/")] : [],
  );
}

/** Imports of a file; relative targets resolved to repository paths (`server/store/quorum.ts`), packages as named. */
function importsOf(file: string): Import[] {
  const text = readFileSync(join(root, file), "utf8");
  const found: Import[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?(?:[^;]*?\sfrom\s+)?"([^"]+)"/gms)) {
    const spec = m[2]!;
    let target = spec.startsWith(".")
      ? relative(root, resolve(root, dirname(file), spec))
          .split(sep)
          .join("/")
          .replace(/\.js$/, ".ts")
      : spec;
    // A `.js` specifier names a `.ts` or a `.tsx` (JSX) source.
    const tsx = target.replace(/\.ts$/, ".tsx");
    if (target.endsWith(".ts") && !existsSync(join(root, target)) && existsSync(join(root, tsx))) target = tsx;
    found.push({ file, target, typeOnly: Boolean(m[1]) });
  }
  return found;
}

const files = [...sources("server"), ...sources("db")];
const imports = files.flatMap(importsOf);
// dhcp/ and syslog/ are protocol code with their sockets (node:dgram) but no framework, store or logger.
const pureFolders = [
  "server/lifecycle/",
  "server/quorum/",
  "server/enrollment/",
  "server/render/",
  "server/clusters/",
  "server/dhcp/",
  "server/syslog/",
  "server/policy/",
];
const isPure = (f: string) => pureFolders.some((p) => f.startsWith(p)) || f === "server/errors.ts" || f === "server/identity.ts";
const framework = /^(hono|@hono\/|drizzle-orm|better-sqlite3|pino)/;

const show = (list: Import[]) => list.map((i) => `${i.file} imports ${i.target}${i.typeOnly ? " (type)" : ""}`);

describe("import direction: handlers → store → core rules", () => {
  it("the import reader sees the imports (a file known to import the store does)", () => {
    expect(imports.some((i) => i.file === "server/http/node.ts" && i.target === "server/store/quorum.ts")).toBe(true);
  });

  it("core rules import no framework, no database (types aside), no store, no handler", () => {
    const bad = imports.filter(
      (i) =>
        isPure(i.file) &&
        (framework.test(i.target) ||
          i.target.startsWith("server/store/") ||
          i.target.startsWith("server/http/") ||
          i.target === "server/context.ts" ||
          (i.target.startsWith("db/") && !i.typeOnly)),
    );
    expect(show(bad)).toEqual([]);
  });

  it("the lifecycle module stands alone; quorum and render do not import each other", () => {
    const bad = imports.filter(
      (i) =>
        (i.file.startsWith("server/lifecycle/") && i.target.startsWith("server/") && !i.target.startsWith("server/lifecycle/")) ||
        (i.file.startsWith("server/quorum/") && i.target.startsWith("server/render/")) ||
        (i.file.startsWith("server/render/") && i.target.startsWith("server/quorum/")),
    );
    expect(show(bad)).toEqual([]);
  });

  it("the store imports no HTTP framework and no handler", () => {
    const bad = imports.filter((i) => i.file.startsWith("server/store/") && (/^(hono|@hono\/)/.test(i.target) || i.target.startsWith("server/http/")));
    expect(show(bad)).toEqual([]);
  });

  it("no handler imports another handler (middleware and the error handler are shared)", () => {
    // schemas/: request bodies the admin API and the console both validate with (one schema, one document).
    const shared = (t: string) => t.startsWith("server/http/middleware/") || t.startsWith("server/http/schemas/") || t === "server/http/error-handler.ts";
    // A handler too big for one file is a folder (server/http/ui/): its own modules import each other.
    const folderOf = (f: string) => /^server\/http\/([^/]+)\//.exec(f)?.[1];
    const sameHandler = (i: Import) => folderOf(i.file) !== undefined && folderOf(i.file) !== "middleware" && folderOf(i.file) === folderOf(i.target);
    const bad = imports.filter(
      (i) =>
        i.file.startsWith("server/http/") &&
        i.target.startsWith("server/http/") &&
        !shared(i.target) &&
        !i.file.startsWith("server/http/middleware/") &&
        !sameHandler(i),
    );
    expect(show(bad)).toEqual([]);
  });

  it("db/ imports nothing from server/ but the lifecycle's vocabulary, as types", () => {
    const bad = imports.filter(
      (i) => i.file.startsWith("db/") && i.target.startsWith("server/") && !(i.typeOnly && i.target === "server/lifecycle/machine.ts"),
    );
    expect(show(bad)).toEqual([]);
  });

  it("no server source file is over 400 lines", () => {
    const long = files
      .filter((f) => f.startsWith("server/"))
      .map((f) => [f, readFileSync(join(root, f), "utf8").split("\n").length] as const)
      .filter(([, n]) => n > 400);
    expect(long).toEqual([]);
  });
});
