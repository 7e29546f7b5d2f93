import { defineConfig } from 'vitest/config';

// Tests live in one folder per room (test/<room>/), plus the suites that cross
// rooms (reliability, conformance, e2e). Fast or slow is the file's suffix:
// `*.int.test.ts` start real gateways, upstream processes, sandboxes or a
// keychain and get longer timeouts (the machines are shared and can be
// loaded); nothing asserts on speed. Each file runs in its own forked process.
export default defineConfig({
  test: {
    pool: 'forks',
    clearMocks: true,
    projects: [
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.int.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.int.test.ts', '**/node_modules/**'],
          testTimeout: 20_000,
          hookTimeout: 20_000,
        },
      },
    ],
  },
});
