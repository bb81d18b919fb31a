/**
 * /openapi.json against the app it describes: every route hono registered is in it, with the
 * zod schemas its validators check, and it is valid OpenAPI 3.1 (checked offline against the
 * official schema by @seriousme/openapi-schema-validator). /docs renders it without a script.
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { openApiPath } from "../../server/http/openapi/build.js";
import { makeTestApp } from "../helpers/app.js";

type Doc = {
  openapi: string;
  paths: Record<
    string,
    Record<string, { parameters?: { name: string; in: string }[]; requestBody?: unknown; security?: unknown[]; responses: Record<string, unknown> }>
  >;
};

async function documentOf() {
  const { app } = makeTestApp();
  const res = await app.request("/openapi.json");
  expect(res.status).toBe(200);
  return { app, doc: (await res.json()) as Doc };
}

describe("GET /openapi.json", () => {
  it("every registered route (app.routes, middleware aside) is an operation of the document", async () => {
    const { app, doc } = await documentOf();
    const routes = app.routes.filter((r) => r.method !== "ALL");
    expect(routes.length).toBeGreaterThan(30);
    const missing = routes.filter((r) => doc.paths[openApiPath(r.path).path]?.[r.method.toLowerCase()] === undefined).map((r) => `${r.method} ${r.path}`);
    expect(missing).toEqual([]);
    for (const path of ["/api/v1/nodes", "/api/v1/nodes/{id}/approve", "/api/v1/enroll", "/api/v1/node/config", "/metrics", "/ui", "/openapi.json", "/docs"]) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
  });

  it("is valid OpenAPI 3.1", async () => {
    const { doc } = await documentOf();
    expect(doc.openapi).toBe("3.1.0");
    const result = await new Validator().validate(doc as never);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it("a route's body, query and path schemas are the zod schemas it validates with; errors and auth come from its middleware", async () => {
    const { doc } = await documentOf();
    const approve = doc.paths["/api/v1/nodes/{id}/approve"]!.post!;
    const body = JSON.stringify(approve.requestBody);
    // The approve body's own fields and rules (hostname's RFC 1123 pattern, role's enum).
    expect(body).toContain('"hostname"');
    expect(body).toContain('"auto"');
    expect(body).toContain('"additionalProperties":false');
    expect(approve.parameters).toEqual([expect.objectContaining({ name: "id", in: "path" })]);
    expect(Object.keys(approve.responses)).toEqual(expect.arrayContaining(["200", "400", "401", "404", "409", "413", "422"]));
    expect(approve.security).toEqual([{ adminToken: [] }]);
    const list = doc.paths["/api/v1/nodes"]!.get!;
    expect(list.parameters?.map((p) => p.name)).toEqual(expect.arrayContaining(["state", "cluster_id"]));
    const enroll = doc.paths["/api/v1/enroll"]!.post!;
    expect(JSON.stringify(enroll.requestBody)).toContain('"token"');
    expect(Object.keys(enroll.responses)).toEqual(expect.arrayContaining(["201", "409", "422"]));
    expect(doc.paths["/api/v1/node/config"]!.get!.security).toEqual([{ nodeCredential: [] }]);
  });

  it("hono paths become OpenAPI paths: :id → {id}, a regex param keeps its pattern, * → {path}", () => {
    expect(openApiPath("/api/v1/nodes/:id")).toEqual({ path: "/api/v1/nodes/{id}", params: [{ name: "id" }] });
    expect(openApiPath("/ui/machines/:id/:decision{approve|reject}").params[1]).toEqual({ name: "decision", pattern: "^(approve|reject)$" });
    expect(openApiPath("/artifacts/*").path).toBe("/artifacts/{path}");
  });

  it("GET /docs lists the operations, loads nothing from elsewhere and runs no script", async () => {
    const { app } = makeTestApp();
    const res = await app.request("/docs");
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("/api/v1/nodes/{id}/approve");
    expect(html).toContain("Approve a machine");
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/https?:\/\//);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
  });
});
