/** The README's Settings and installer sections, held to the code they describe. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { installerProfile } from "../../server/clusters/spec.js";
import { settingNames } from "../../server/config.js";
import { makeTestApp, testAdminToken } from "../helpers/app.js";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

/** The text of one `## title` section, up to the next `## `. */
function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start === -1) throw new Error(`README has no section "## ${title}"`);
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end === -1 ? undefined : end);
}

/** The first column of a section's table rows, backticks removed. */
function firstColumn(text: string): string[] {
  return text
    .split("\n")
    .filter((l) => l.startsWith("| `"))
    .flatMap((l) => [...l.split(" | ")[0]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
}

const fields = Object.keys(installerProfile.shape).sort();

describe("README", () => {
  it("Settings: the table lists every setting and EDGEJOIN_CONFIG, nothing else", () => {
    expect(firstColumn(section("Settings")).sort()).toEqual([...settingNames, "EDGEJOIN_CONFIG"].sort());
  });

  it("installer: the table lists every field the API takes, nothing else", () => {
    expect(firstColumn(section("A cluster's installer")).sort()).toEqual(fields);
  });

  it("installer: one example per kind, each accepted by POST /api/v1/clusters as written; the first sets every field", async () => {
    const examples = [...section("A cluster's installer").matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as Record<string, unknown>);
    expect(examples.map((e) => e.kind)).toEqual(["ubuntu-autoinstall", "cloud-image"]);
    expect(Object.keys(examples[0]!).sort()).toEqual(fields);
    const t = makeTestApp();
    for (const [i, installer] of examples.entries()) {
      const res = await t.app.request("/api/v1/clusters", {
        method: "POST",
        headers: { authorization: `Bearer ${testAdminToken}`, "content-type": "application/json" },
        body: JSON.stringify({ name: `readme-${i}`, installer }),
      });
      const body = (await res.json()) as { installer?: unknown };
      expect(res.status, JSON.stringify(body)).toBe(201);
      expect(body.installer).toEqual(installer);
    }
  });
});
