/** Temp folders for tests, named edgejoin-<prefix>-…, removed afterwards. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onTestFinished } from "vitest";

/** A fresh temp folder; the caller removes it with `remove` (for folders a whole suite shares). */
export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `edgejoin-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A fresh temp folder removed when the running test finishes, pass or fail; call it inside a test. */
export function testTempDir(prefix: string): string {
  const { dir, remove } = tempDir(prefix);
  onTestFinished(remove);
  return dir;
}
