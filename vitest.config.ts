import { defineConfig } from 'vitest/config';

// Integration tests start real gateways, upstream processes, sandboxes and a
// keychain: longer timeouts (the machines are shared and can be loaded), but
// nothing asserts on speed. Each file runs in its own forked process.
export default defineConfig({
  test: {
    pool: 'forks',
    clearMocks: true,
    projects: [
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/{integration,sandbox,secrets,connectors,audit,reliability,conformance,e2e,inference}/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/{integration,sandbox,secrets,connectors,audit,reliability,conformance,e2e,inference}/**', '**/node_modules/**'],
          testTimeout: 20_000,
          hookTimeout: 20_000,
        },
      },
    ],
  },
});
