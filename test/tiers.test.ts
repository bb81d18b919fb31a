import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { entryPattern, testFiles, tierProblems, tiers } from "./tiers.js";

const root = fileURLToPath(new URL("..", import.meta.url));

describe("test tiers", () => {
  it("every test/**/*.test.ts → in exactly one tier; every tier entry matches a file", () => {
    const files = testFiles(root);
    expect(files).toContain("test/tiers.test.ts");
    expect(files.length).toBeGreaterThan(30);
    expect(tierProblems(files)).toEqual([]);
  });

  it("a file in no tier, a file in two, an entry matching nothing → each named", () => {
    const lists = { unit: ["test/a/*.test.ts", "test/gone.test.ts"], integration: ["test/a/b.test.ts"], lab: ["test/lab/**/*.test.ts"] };
    expect(tierProblems(["test/a/b.test.ts", "test/c.test.ts", "test/lab/x/y.test.ts"], lists)).toEqual([
      "test/a/b.test.ts is in more than one tier (unit, integration)",
      "test/c.test.ts is in no tier",
      "unit entry test/gone.test.ts matches no test file",
    ]);
  });

  it("entries: * stays in one folder, ** spans folders, dots are literal", () => {
    expect(entryPattern("test/lab/**/*.test.ts").test("test/lab/machine-life.test.ts")).toBe(true);
    expect(entryPattern("test/lab/**/*.test.ts").test("test/lab/a/b/c.test.ts")).toBe(true);
    expect(entryPattern("test/lab/**/*.test.ts").test("test/labs/x.test.ts")).toBe(false);
    expect(entryPattern("test/*.test.ts").test("test/a/b.test.ts")).toBe(false);
    expect(entryPattern("test/a.test.ts").test("test/aXtest.ts")).toBe(false);
  });

  it("the tiers the config builds its projects from: unit, integration, lab", () => {
    expect(Object.keys(tiers)).toEqual(["unit", "integration", "lab"]);
  });
});
