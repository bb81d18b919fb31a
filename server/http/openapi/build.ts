/**
 * /openapi.json, generated from the running app: every route hono registered (`app.routes`),
 * with the zod schemas its `validate()` middlewares check (zod 4's own `z.toJSONSchema`, in the
 * JSON Schema dialect OpenAPI 3.1 uses), its authentication from the middlewares it runs, and the
 * errors those middlewares and the path can answer. Nothing is written twice, so the document
 * cannot drift from what the routes accept.
 */
import type { MiddlewareHandler } from "hono";
import type { RouterRoute } from "hono/types";
import { z } from "zod";
import { adminAuth } from "../middleware/admin-auth.js";
import { nodeAuth } from "../middleware/node-auth.js";
import { limitJsonBody, validators } from "../middleware/validate.js";
import { summaries } from "./summaries.js";

type Json = Record<string, unknown>;

/** Hono's `/a/:id{regex}/*` as OpenAPI's `/a/{id}/{path}`, with the parameter names. */
export function openApiPath(path: string): { path: string; params: { name: string; pattern?: string }[] } {
  const params: { name: string; pattern?: string }[] = [];
  const out = path
    .split("/")
    .map((seg) => {
      const m = /^:([A-Za-z0-9_]+)(?:\{(.+)\})?$/.exec(seg);
      if (m) {
        params.push(m[2] ? { name: m[1]!, pattern: `^(${m[2]})$` } : { name: m[1]! });
        return `{${m[1]}}`;
      }
      if (seg === "*") {
        params.push({ name: "path" });
        return "{path}";
      }
      return seg;
    })
    .join("/");
  return { path: out, params };
}

function jsonSchema(schema: z.ZodType): Json {
  // Input side: what a client sends (before transforms such as string → number ids).
  const out = z.toJSONSchema(schema, { target: "draft-2020-12", io: "input", unrepresentable: "any" }) as Json;
  delete out.$schema;
  return out;
}

const errorRef = { $ref: "#/components/schemas/Error" };
const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: errorRef } } });

/** The operations of one method and path, from the handlers registered for it. */
function operation(method: string, path: string, handlers: RouterRoute["handler"][]): Json {
  const { params } = openApiPath(path);
  const checks = handlers.map((h) => validators.get(h as MiddlewareHandler)).filter((v) => v !== undefined);
  const admin = handlers.includes(adminAuth);
  const node = handlers.includes(nodeAuth);
  const ui = path.startsWith("/ui");
  const op: Json = {
    operationId: `${method.toLowerCase()}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ?? "").toUpperCase())}`,
    summary: summaries[`${method} ${path}`] ?? `${method} ${path}`,
    tags: [ui ? "console" : admin ? "admin" : node || path === "/api/v1/enroll" ? "node" : "machines and monitoring"],
  };
  const pathSchema = checks.find((v) => v.target === "param");
  const pathProps = pathSchema ? ((jsonSchema(pathSchema.schema).properties ?? {}) as Record<string, Json>) : {};
  const parameters: Json[] = params.map((p) => ({
    name: p.name,
    in: "path",
    required: true,
    schema: pathProps[p.name] ?? { type: "string", ...(p.pattern ? { pattern: p.pattern } : {}) },
  }));
  const query = checks.find((v) => v.target === "query");
  if (query) {
    const s = jsonSchema(query.schema);
    const required = new Set((s.required as string[] | undefined) ?? []);
    for (const [name, schema] of Object.entries((s.properties ?? {}) as Record<string, Json>))
      parameters.push({ name, in: "query", required: required.has(name), schema });
  }
  if (parameters.length > 0) op.parameters = parameters;
  const body = checks.find((v) => v.target === "json");
  if (body) op.requestBody = { required: false, content: { "application/json": { schema: jsonSchema(body.schema) } } };
  else if (ui && method === "POST") {
    op.requestBody = { content: { "application/x-www-form-urlencoded": { schema: { type: "object", properties: { _csrf: { type: "string" } } } } } };
  }
  if (admin) op.security = [{ adminToken: [] }];
  else if (node) op.security = [{ nodeCredential: [] }];
  else if (ui && path !== "/ui/login" && path !== "/ui/static/{file}") op.security = [{ consoleSession: [] }];

  const responses: Json = { [method === "POST" && path === "/api/v1/enroll" ? "201" : "200"]: { description: "done" } };
  if (body) responses["400"] = errorResponse("invalid_json: the body is not JSON");
  if (checks.length > 0 || params.length > 0)
    responses["422"] = errorResponse("validation_failed (details.issues says where), or another bad value such as invalid_mac");
  if (handlers.includes(limitJsonBody)) responses["413"] = errorResponse("body_too_large: over 64 KiB");
  if (admin || node || op.security)
    responses["401"] = errorResponse(node ? "token_invalid, token_expired, credential_revoked: the node credential is not accepted" : "unauthorized");
  if (node || ui)
    responses["403"] = errorResponse(node ? "machine_rejected, machine_retired, seat_revoked, tls_required" : "forbidden: no or a wrong CSRF token");
  if (params.length > 0) responses["404"] = errorResponse("not_found");
  if (method !== "GET") responses["409"] = errorResponse("invalid_state, conflict, token_replayed, identity_conflict: refused in the current state");
  op.responses = responses;
  return op;
}

/** The OpenAPI 3.1 document of these routes. */
export function buildOpenApi(routes: readonly RouterRoute[], version: string): Json {
  const byPath = new Map<string, Map<string, RouterRoute["handler"][]>>();
  for (const r of routes) {
    // app.use() middleware is registered as ALL: it is no operation of its own.
    if (r.method === "ALL") continue;
    const methods = byPath.get(r.path) ?? new Map<string, RouterRoute["handler"][]>();
    methods.set(r.method, [...(methods.get(r.method) ?? []), r.handler]);
    byPath.set(r.path, methods);
  }
  const paths: Record<string, Json> = {};
  for (const [path, methods] of byPath) {
    const p = openApiPath(path).path;
    paths[p] ??= {};
    for (const [method, handlers] of methods) paths[p]![method.toLowerCase()] = operation(method, path, handlers);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "edgejoin",
      version,
      description: "Zero-touch PXE enrollment for edge k3s: boot and seed for machines, the node API for their agent, the admin API.",
    },
    paths,
    components: {
      schemas: {
        Error: {
          type: "object",
          required: ["error", "message", "requestId"],
          properties: {
            error: { type: "string", description: "a stable code, e.g. validation_failed, not_found, unauthorized" },
            message: { type: "string" },
            requestId: { type: "string" },
            details: {},
          },
        },
      },
      securitySchemes: {
        adminToken: { type: "http", scheme: "bearer", description: "a named admin token or EDGEJOIN_ADMIN_TOKEN" },
        nodeCredential: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "the node credential POST /api/v1/enroll returned" },
        consoleSession: { type: "apiKey", in: "cookie", name: "edgejoin_session", description: "the console's session, from POST /ui/login" },
      },
    },
  };
}
