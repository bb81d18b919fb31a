import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";
import { assertTiers, tiers } from "./test/tiers.js";

// Every test file is in exactly one tier, or nothing runs (the lists and the rules: test/tiers.ts).
assertTiers(fileURLToPath(new URL(".", import.meta.url)));

/**
 * The machine lab's longest file boots QEMU guests for minutes: it starts first, so the run lasts
 * as long as the lab, not the lab plus the rest. The other worker takes the integration files
 * next and only then the other QEMU files, so that two sets of TCG guests do not starve each
 * other on two cores for long (the three-server case timed out when they did). Files of the
 * other tiers keep vitest's order.
 */
const longestLabFile = "/test/lab/machine-life.test.ts";

class LabLongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => (f.moduleId.endsWith(longestLabFile) ? 0 : f.project.name !== "lab" ? 1 : 2);
    return sorted
      .map((f, i) => ({ f, i }))
      .sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i)
      .map(({ f }) => f);
  }
}

/*
 * `vitest run --project <tier>` runs one tier (npm run test:unit, test:integration, test:lab);
 * `vitest run` (npm test) runs unit first, then integration and lab together on two workers:
 * the lab's QEMU guests are CPU-bound under TCG and must not starve each other on two cores,
 * and the integration files fit beside the lab in the time it takes.
 */
export default defineConfig({
  test: {
    sequence: { sequencer: LabLongestFirst },
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: tiers.unit,
          testTimeout: 10_000,
          hookTimeout: 10_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: tiers.integration,
          testTimeout: 30_000,
          hookTimeout: 60_000,
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          name: "lab",
          include: tiers.lab,
          testTimeout: 30_000,
          hookTimeout: 60_000,
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
