#!/usr/bin/env node
// Mutation testing (StrykerJS) of the security-critical modules, one group at
// a time, each against the test files that are meant to catch its breaks
// (vitest.mutation.config.ts includes only those): a module's own tests must
// kill its mutants, and a mutant that changes a module-level constant re-runs
// only those files. (Not Stryker's --testFiles: with it, Stryker 9.6 activates
// such "static" mutants only after the module has loaded, so they all survive.)
//
//   npm run test:mutation                 every group
//   npm run test:mutation -- policy audit some groups (names below)
//
// Reports: reports/mutation/<group>.json and .html; the score of each group
// and the time it took are printed at the end. Surviving mutants that cannot
// be killed are listed in test/mutation/equivalent.md.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';

export const GROUPS = {
  policy: {
    mutate: ['src/policy/evaluate.ts', 'src/policy/matchers.ts', 'src/policy/path-match.ts', 'src/policy/arg-glob.ts', 'src/policy/rule-index.ts'],
    tests: ['test/policy/{explain,matchers,model-rules,path-matcher,precedence,presets,property,test-cases}.test.ts', 'test/policy/evaluate-edges.test.ts'],
  },
  redaction: {
    mutate: ['src/secrets/redact.ts', 'src/secrets/forms.ts', 'src/secrets/form-index.ts'],
    tests: ['test/secrets/{redact,forms,redact-edges}.test.ts'],
  },
  tokens: {
    mutate: ['src/server/tokens.ts', 'src/server/revocations.ts', 'src/server/guards.ts', 'src/server/auth.ts'],
    tests: ['test/server/{tokens,token-verifier,revocations,guards,token-edges,server-auth,listen-addresses}.test.ts'],
  },
  sessions: {
    // The quota key and the identity check of get(); the control socket; the sandbox session sockets.
    mutate: ['src/server/mcp-sessions.ts:29-32', 'src/server/mcp-sessions.ts:87-94', 'src/server/control.ts', 'src/sandbox/sandbox-sessions.ts:50-83'],
    tests: ['test/server/session-identity.test.ts', 'test/sandbox/socket-setup.test.ts'],
  },
  audit: {
    // Verify and the record format, against the verifier's tests.
    mutate: ['src/audit/verify.ts', 'src/audit/canonical.ts', 'src/audit/record.ts', 'src/audit/line-check.ts', 'src/audit/verify-range.ts'],
    tests: ['test/audit/{verify,verify-kinds,canonical,audit-edges,verify-edges}.test.ts'],
  },
  writer: {
    // The writer: the lock (taken, released on a failed open and at close), refusals (closed,
    // failed, headroom), records of calls already forwarded (appendOutcome, the bounded late
    // queue, its drain and the count of what was over it), the chain (seq/prev on append and
    // where it goes on after a restart), the durability order (write, fdatasync, then resolve);
    // and the per-record size bound (bound.ts).
    mutate: [
      ...['154-157', '165-168', '193-198', '206-213', '215-292', '300-359', '385-402', '433-449', '456-467', '514-517', '539-540'].map((l) => `src/audit/writer.ts:${l}`),
      ...['76-85', '108-118'].map((l) => `src/audit/headroom.ts:${l}`),
      'src/audit/late-queue.ts',
      'src/audit/repair.ts:28-50',
      'src/audit/bound.ts',
    ],
    tests: ['test/audit/{writer,append,disk-full,headroom}.int.test.ts', 'test/audit/{writer-edges,audit-bound}.test.ts', 'test/broker/hostile-result-audit.test.ts'],
  },
  catalog: {
    mutate: ['src/broker/catalog.ts', 'src/registry/exposure.ts'],
    tests: ['test/broker/{catalog,catalog-edges,catalog-names}.test.ts'],
  },
};

const wanted = process.argv.slice(2);
for (const g of wanted) if (!(g in GROUPS)) {
  console.error(`unknown group "${g}"; groups: ${Object.keys(GROUPS).join(', ')}`);
  process.exit(2);
}
const groups = wanted.length > 0 ? wanted : Object.keys(GROUPS);
mkdirSync('reports/mutation', { recursive: true });

/** Expands one {a,b} brace group (all the patterns above use), keeping the files that exist. */
function files(patterns) {
  return patterns.flatMap((p) => {
    const m = /^(.*)\{([^}]*)\}(.*)$/.exec(p);
    return m ? m[2].split(',').map((x) => `${m[1]}${x}${m[3]}`) : [p];
  }).filter((f) => existsSync(f));
}

const results = [];
let failed = false;
for (const name of groups) {
  const g = GROUPS[name];
  const started = Date.now();
  const r = spawnSync('npx', ['stryker', 'run', '--mutate', g.mutate.join(','), ...(process.env.STRYKER_ARGS?.split(' ').filter(Boolean) ?? [])], {
    stdio: 'inherit',
    env: { ...process.env, GATEHOUSE_MUTATION_TESTS: files(g.tests).join(',') },
  });
  const seconds = Math.round((Date.now() - started) / 1000);
  for (const ext of ['json', 'html']) if (existsSync(`reports/mutation/mutation.${ext}`)) copyFileSync(`reports/mutation/mutation.${ext}`, `reports/mutation/${name}.${ext}`);
  const report = existsSync('reports/mutation/mutation.json') ? JSON.parse(readFileSync('reports/mutation/mutation.json', 'utf8')) : undefined;
  const counts = {};
  for (const f of Object.values(report?.files ?? {})) for (const m of f.mutants) counts[m.status] = (counts[m.status] ?? 0) + 1;
  const detected = (counts.Killed ?? 0) + (counts.Timeout ?? 0);
  const valid = detected + (counts.Survived ?? 0) + (counts.NoCoverage ?? 0);
  results.push({ name, seconds, score: valid === 0 ? 'n/a' : `${((100 * detected) / valid).toFixed(1)}%`, ...counts, exit: r.status });
  if (r.status !== 0) failed = true;
}
console.table(results);
process.exit(failed ? 1 : 0);
