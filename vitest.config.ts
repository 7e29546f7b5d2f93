import { defineConfig } from 'vitest/config';

// Tests live in one folder per room (test/<room>/), plus the suites that cross
// rooms (reliability, conformance, e2e). Fast or slow is the file's suffix:
// `*.int.test.ts` start real gateways, upstream processes, sandboxes or a
// keychain and get longer timeouts (the machines are shared and can be
// loaded); nothing asserts on speed. Each file runs in its own forked process.
//
// Two files at a time, then one: unit and most integration files run two at
// once (on a 2-core machine much of their time is spent waiting on child
// processes, disks and timers); the files below run afterwards, alone, because
// they load the whole machine themselves (floods, real agents, nested
// sandboxes, verify on every core) or measure an innocent agent's latency
// during an attack, which a neighbour's load would blur.
const ALONE = [
  'test/reliability/**/*.int.test.ts',
  'test/e2e/real-agents.int.test.ts',
  'test/sandbox/nested.int.test.ts',
  'test/audit/verify-parallel.int.test.ts',
  'test/secrets/cli.int.test.ts',
  'test/conformance/eras.int.test.ts',
];

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
          exclude: [...ALONE, '**/node_modules/**'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
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
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'alone',
          include: ALONE,
          testTimeout: 60_000,
          hookTimeout: 60_000,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
