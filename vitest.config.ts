import { defineConfig } from 'vitest/config';

// Integration tests start real gateways and upstream processes: longer timeouts,
// but nothing asserts on speed. Each file runs in its own forked process.
export default defineConfig({
  test: {
    pool: 'forks',
    clearMocks: true,
    projects: [
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/integration/**', '**/node_modules/**'],
          testTimeout: 10_000,
          hookTimeout: 10_000,
        },
      },
    ],
  },
});
