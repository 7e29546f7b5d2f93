import { defineConfig } from 'vitest/config';

// Only the in-process tests that import the security-critical modules Stryker
// mutates (stryker.config.mjs). Integration tests start real gateways from
// dist/, which Stryker does not mutate: they would only cost time.
export default defineConfig({
  test: {
    clearMocks: true,
    // scripts/mutation.mjs sets the test files of the group it mutates.
    include: process.env.GATEHOUSE_MUTATION_TESTS?.split(',') ?? [
      'test/{policy,broker,server,config,registry}/**/*.test.ts',
      'test/secrets/{redact,forms,redact-edges}.test.ts',
      'test/audit/{verify,verify-kinds,canonical,audit-edges,verify-edges,writer-edges,audit-bound}.test.ts',
      'test/mutation/**/*.test.ts',
    ],
    // By default, not the ones that spawn the CLI or gateways from dist/ (*.int), nor the speed check;
    // a group's own list (GATEHOUSE_MUTATION_TESTS) is taken as it is.
    exclude: process.env.GATEHOUSE_MUTATION_TESTS ? ['**/node_modules/**'] : ['**/*.int.test.ts', 'test/policy/bench.test.ts', '**/node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
