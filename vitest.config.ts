import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: the QEMU tests are CPU-bound under TCG and must not starve each other.
    maxWorkers: 2,
  },
});
