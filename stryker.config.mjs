// Mutation testing of the security-critical modules (issue #23).
// Run: npm run test:mutation            (all modules, ~see README)
//      npm run test:mutation -- --mutate src/policy/evaluate.ts
// Surviving mutants that are truly equivalent are listed in
// test/mutation/equivalent.md; every other survivor needs a test.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts', related: true },
  checkers: [],
  coverageAnalysis: 'perTest',
  concurrency: 1,
  timeoutMS: 5_000,
  mutate: [
    // policy evaluation
    'src/policy/evaluate.ts',
    'src/policy/matchers.ts',
    'src/policy/path-match.ts',
    'src/policy/arg-glob.ts',
    'src/policy/rule-index.ts',
    // tokens and guards
    'src/server/tokens.ts',
    'src/server/revocations.ts',
    'src/server/guards.ts',
    'src/server/auth.ts',
    // catalog and its exposure filter
    'src/broker/catalog.ts',
    'src/registry/exposure.ts',
    // secret redaction
    'src/secrets/redact.ts',
    'src/secrets/forms.ts',
    'src/secrets/form-index.ts',
    // audit write/verify
    'src/audit/verify.ts',
    'src/audit/canonical.ts',
    'src/audit/record.ts',
    'src/audit/line-check.ts',
    'src/audit/verify-range.ts',
    // session binding (quota key and the identity check in get()), the
    // control socket and the sandbox session sockets (directory and socket modes)
    'src/server/mcp-sessions.ts:29-32', 'src/server/mcp-sessions.ts:87-94',
    'src/server/control.ts',
    'src/sandbox/sandbox-sessions.ts:50-83',
  ],
  // The sandbox copy needs only sources, tests and configs.
  ignorePatterns: ['dist', 'native/build', 'coverage', 'reports', '.state', 'scratch', '.cache'],
  thresholds: { high: 95, low: 90, break: 90 },
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
