/**
 * The one input validator: `validate(target, schema)` parses a request part with zod and puts
 * the typed result in `c.req.valid(target)`. Every refusal is an ApiError, so bad input takes
 * the same path (and shape) as every other error: malformed JSON → 400 `invalid_json`, a schema
 * miss → 422 `validation_failed` with the issues in `details`.
 */
import type { Context, Env, MiddlewareHandler, ValidationTargets } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { ApiError } from "../../errors.js";

/** The largest JSON body any edgejoin API takes; enroll facts of a big machine are a few KiB. */
export const maxJsonBodyBytes = 64 * 1024;

/** Refuse bodies over `maxJsonBodyBytes` with 413 `body_too_large` before anything reads them. */
export const limitJsonBody = bodyLimit({
  maxSize: maxJsonBodyBytes,
  onError: () => {
    throw new ApiError("body_too_large", `the request body is larger than ${maxJsonBodyBytes / 1024} KiB`);
  },
});

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
      const text = await c.req.text();
      // An empty body is an empty object: `POST .../approve` with nothing to say is fine.
      if (text.trim() === "") return {};
      const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      if (!/^application\/([\w.-]+\+)?json$/.test(type)) {
        throw new ApiError("invalid_json", "the request body must be JSON (content-type: application/json)");
      }
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
  const middleware: MiddlewareHandler = async (c, next) => {
    const parsed = schema.safeParse(await readTarget(c, target));
    if (!parsed.success) {
      const issues = describeIssues(parsed.error);
      const first = issues[0]!;
      throw new ApiError("validation_failed", `${first.path}: ${first.message}`, { issues });
    }
    c.req.addValidatedData(target, parsed.data as object);
    await next();
  };
  // /openapi.json is generated from these: the schema a route validates with is the one it documents.
  validators.set(middleware, { target, schema });
  return middleware;
}

/** Which request part and zod schema each `validate()` middleware checks, by middleware: what /openapi.json reads. */
export const validators = new WeakMap<MiddlewareHandler, { target: keyof ValidationTargets; schema: z.ZodType }>();

/** A numeric id in the path (`/:id`), as every admin route takes it. */
export const idParam = z.object({
  id: z
    .string()
    .regex(/^[1-9]\d{0,14}$/, "id must be a positive integer")
    .transform(Number),
});
