/** @jsxImportSource hono/jsx */
/**
 * `GET /openapi.json` and `GET /docs`: the API described from the app's own routes and zod
 * schemas (./build.ts). The docs page is rendered here, without a CDN or a script: edge sites
 * often have no Internet, and the CSP of the console applies.
 */
import { readFileSync } from "node:fs";
import { Hono } from "hono";
import type { RouterRoute } from "hono/types";
import type { AppEnv } from "../../context.js";
import { consoleHeaders } from "../middleware/console-headers.js";
import { buildOpenApi } from "./build.js";
import { DocsPage } from "./page.js";

const version = (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** The two routes; `routes` is read when asked, so routes mounted after these are described too. */
export function openApiRoutes(routes: () => readonly RouterRoute[]) {
  let cached: ReturnType<typeof buildOpenApi> | undefined;
  // Routes do not change once the app serves: build the document once.
  const doc = () => (cached ??= buildOpenApi(routes(), version));
  return new Hono<AppEnv>()
    .get("/openapi.json", (c) => c.json(doc()))
    .use("/docs", consoleHeaders)
    .get("/docs", (c) => c.html(<DocsPage doc={doc()} />));
}
