import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The machine lab boots QEMU guests for minutes while everything else takes about two minutes
 * on the other worker: start the longest files first so the run lasts as long as the lab, not
 * the lab plus the rest.
 */
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => (f.moduleId.includes("/test/lab/") ? 0 : f.moduleId.includes("/test/e2e/") ? 1 : 2);
    return sorted.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
  }
}

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: the QEMU tests are CPU-bound under TCG and must not starve each other.
    maxWorkers: 2,
    sequence: { sequencer: LongestFirst },
  },
});
