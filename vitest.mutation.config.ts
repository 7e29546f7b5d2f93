import { defineConfig } from 'vitest/config';

// Only the in-process tests that import the security-critical modules Stryker
// mutates (stryker.config.mjs). Integration tests start real gateways from
// dist/, which Stryker does not mutate: they would only cost time.
export default defineConfig({
  test: {
    clearMocks: true,
    // scripts/mutation.mjs sets the test files of the group it mutates.
    include: process.env.GATEHOUSE_MUTATION_TESTS?.split(',') ?? [
      'test/policy/**/*.test.ts',
      'test/unit/**/*.test.ts',
      'test/secrets/{redact,forms}.test.ts',
      'test/audit/{verify,verify-kinds,canonical,append,writer}.test.ts',
      'test/mutation/**/*.test.ts',
    ],
    // These spawn the CLI from dist/ or measure speed.
    exclude: ['test/policy/{cli,bench}.test.ts', '**/node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
