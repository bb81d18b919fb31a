/** Byte-for-byte golden files under test/golden/. `UPDATE_GOLDEN=1 npm run test:unit` rewrites them (only unit tests use them). */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";

export function expectGolden(name: string, actual: string): void {
  const file = fileURLToPath(new URL(`../golden/${name}`, import.meta.url));
  if (process.env.UPDATE_GOLDEN === "1") {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  if (!existsSync(file)) throw new Error(`golden file test/golden/${name} is missing: run UPDATE_GOLDEN=1 npm run test:unit and review it`);
  expect(actual).toBe(readFileSync(file, "utf8"));
}
