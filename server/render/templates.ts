/**
 * Template loading and rendering with the escape policy of each output format. mustache's
 * default HTML escaping is wrong for iPXE and YAML (`/` becomes `&#x2F;`), so it is switched
 * off here and every view is checked against a zod schema first: templates fail closed,
 * because mustache renders a missing key as an empty string without a word.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Mustache from "mustache";
import type { z } from "zod";

/** Reads `templates/<name>.mustache` once and keeps it. */
export class TemplateSet {
  private readonly cache = new Map<string, string>();
  constructor(readonly dir: string) {}

  source(name: string): string {
    let text = this.cache.get(name);
    if (text === undefined) {
      text = readFileSync(join(this.dir, `${name}.mustache`), "utf8");
      this.cache.set(name, text);
    }
    return text;
  }

  /** Validate `view` with `schema`, then render without any escaping (the schema is the escape policy). */
  render<S extends z.ZodType>(name: string, schema: S, view: z.input<S>): string {
    const checked = schema.parse(view);
    return Mustache.render(this.source(name), checked, {}, { escape: (s: string) => s });
  }
}
