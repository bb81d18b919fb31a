/**
 * The one input validator: `validate(target, schema)` parses a request part with zod and puts
 * the typed result in `c.req.valid(target)`. Every refusal is an ApiError, so bad input takes
 * the same path (and shape) as every other error: malformed JSON → 400 `invalid_json`, a schema
 * miss → 422 `validation_failed` with the issues in `details`.
 */
import type { Context, Env, MiddlewareHandler, ValidationTargets } from "hono";
import type { z } from "zod";
import { ApiError } from "../../errors.js";

/** An issue as clients see it: where, and what is wrong; never the offending value. */
export type ValidationIssue = { path: string; message: string };

function describeIssues(error: z.ZodError): ValidationIssue[] {
  return error.issues.slice(0, 20).map((i) => ({
    path: i.path.map(String).join(".") || "(body)",
    message: i.message,
  }));
}

async function readTarget(c: Context, target: keyof ValidationTargets): Promise<unknown> {
  switch (target) {
    case "json": {
      // hono's own json validator yields {} for a wrong content type and a bare HTTPException for
      // bad JSON; read the body here so both get a clear, stable answer.
      const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      if (!/^application\/([\w.-]+\+)?json$/.test(type)) {
        throw new ApiError("invalid_json", "the request body must be JSON (content-type: application/json)");
      }
      const text = await c.req.text();
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new ApiError("invalid_json", "the request body is not valid JSON");
      }
    }
    case "query":
      return Object.fromEntries(Object.entries(c.req.queries()).map(([k, v]) => [k, v.length === 1 ? v[0] : v]));
    case "param":
      return c.req.param();
    case "header":
      return c.req.header();
    default:
      throw new ApiError("internal", `validate() does not read ${target}`);
  }
}

/** Validate `target` (json, query, param, header) against `schema`; throws ApiError on refusal. */
export function validate<Target extends keyof ValidationTargets, Schema extends z.ZodType>(
  target: Target,
  schema: Schema,
): MiddlewareHandler<Env, string, { in: { [K in Target]: z.input<Schema> }; out: { [K in Target]: z.output<Schema> } }> {
  return async (c, next) => {
    const parsed = schema.safeParse(await readTarget(c, target));
    if (!parsed.success) {
      const issues = describeIssues(parsed.error);
      const first = issues[0]!;
      throw new ApiError("validation_failed", `${first.path}: ${first.message}`, { issues });
    }
    c.req.addValidatedData(target, parsed.data as object);
    await next();
  };
}
