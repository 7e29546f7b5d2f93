/**
 * `npm run bench [-- --only calls,sandbox,policy,audit,memory,inference,egress,connectors] [--quick] [--no-write]`
 * Prints markdown tables (each with the machine line) and writes the latest
 * run to bench/RESULTS.md; sections not run keep their earlier tables there.
 * Measures; never asserts (CI does not run it).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchCalls, CALLS_FULL, CALLS_QUICK } from './calls.js';
import { benchConnectors, CONNECTORS_FULL, CONNECTORS_QUICK } from './connectors.js';
import { benchEgress, EGRESS_FULL, EGRESS_QUICK } from './egress.js';
import { benchInference, INFERENCE_FULL, INFERENCE_QUICK } from './inference.js';
import { benchMemory } from './memory.js';
import { benchPolicy } from './policy.js';
import { benchSandbox, SANDBOX_FULL, SANDBOX_QUICK } from './sandbox.js';
import { killStarted, ROOT } from './lib/procs.js';
import { mergeResults } from './lib/results-file.js';
import { machineLine } from './lib/stats.js';

const SECTIONS = ['calls', 'sandbox', 'policy', 'audit', 'memory', 'inference', 'egress', 'connectors'] as const;
type Section = (typeof SECTIONS)[number];

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(`usage: npm run bench -- [--only ${SECTIONS.join(',')}] [--quick] [--no-write]\n`);
  process.exit(0);
}
const only = (values.only ?? SECTIONS.join(',')).split(',').map((s) => s.trim()).filter((s) => s !== '');
for (const s of only) {
  if (!(SECTIONS as readonly string[]).includes(s)) {
    process.stderr.write(`unknown section ${JSON.stringify(s)}; choose from ${SECTIONS.join(', ')}\n`);
    process.exit(2);
  }
}
const quick = values.quick;
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

/** bench/audit.ts is owned by the audit work; it may not exist yet. */
async function auditSection(): Promise<string> {
  const url = new URL('./audit.js', import.meta.url).href;
  let mod: { benchAudit?: (opts?: { records?: number }) => Promise<string> };
  try {
    mod = (await import(url)) as typeof mod;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    return ['### 4. Audit log', '', '| measure | result |', '|---|---|', '| durable append, query, verify | not available yet (bench/audit.ts is not in this tree) |', '', machineLine()].join('\n');
  }
  if (typeof mod.benchAudit !== 'function') return ['### 4. Audit log', '', 'bench/audit.ts does not export `benchAudit()`; not run.', '', machineLine()].join('\n');
  const records = quick ? 20_000 : 1_000_000;
  const table = await mod.benchAudit({ records });
  return ['### 4. Audit log (bench/audit.ts)', '', table.trim(), '', machineLine()].join('\n');
}

const results: Partial<Record<Section, string>> = {};
const started = new Date();
const t0 = performance.now();
const failures: string[] = [];
process.on('SIGINT', () => {
  killStarted();
  process.exit(130);
});
for (const s of SECTIONS.filter((x) => only.includes(x))) {
  log(`${s}...`);
  const ts = performance.now();
  try {
    switch (s) {
      case 'calls':
        results.calls = (await benchCalls(quick ? CALLS_QUICK : CALLS_FULL, log)).markdown;
        break;
      case 'sandbox':
        results.sandbox = await benchSandbox(quick ? SANDBOX_QUICK : SANDBOX_FULL, log);
        break;
      case 'policy':
        results.policy = [(await benchPolicy(quick ? { calls: 500, rounds: 4 } : {})).replace(/^### /, '### 3. '), '', machineLine()].join('\n');
        break;
      case 'audit':
        results.audit = await auditSection();
        break;
      case 'memory':
        results.memory = await benchMemory({ sessions: 100, settleMs: quick ? 1000 : 2000, steady: quick ? { minMs: 20_000, quietMs: 4000, maxMs: 40_000 } : { minMs: 25_000, quietMs: 10_000, maxMs: 90_000 } }, log);
        break;
      case 'inference':
        results.inference = await benchInference(quick ? INFERENCE_QUICK : INFERENCE_FULL, log);
        break;
      case 'egress':
        results.egress = await benchEgress(quick ? EGRESS_QUICK : EGRESS_FULL, log);
        break;
      case 'connectors':
        results.connectors = await benchConnectors(quick ? CONNECTORS_QUICK : CONNECTORS_FULL, log);
        break;
    }
  } catch (e) {
    killStarted();
    const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
    failures.push(`${s}: ${msg}`);
    results[s] = `### ${s}\n\nFAILED: ${msg.split('\n')[0] ?? ''}`;
  }
  log(`${s} done in ${((performance.now() - ts) / 1000).toFixed(1)} s`);
  process.stdout.write(`\n${results[s] ?? ''}\n`);
}

const file = join(ROOT, 'bench', 'RESULTS.md');
const body = mergeResults({
  previous: existsSync(file) ? readFileSync(file, 'utf8') : undefined,
  sections: SECTIONS,
  results,
  run: `Run ${started.toISOString()} with \`npm run bench${quick || values.only ? ` --${quick ? ' --quick' : ''}${values.only ? ` --only ${only.join(',')}` : ''}` : ''}\` in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
});
if (!values['no-write']) {
  writeFileSync(file, body);
  log(`wrote bench/RESULTS.md`);
}
if (failures.length > 0) {
  process.stderr.write(`\n${failures.join('\n\n')}\n`);
  process.exitCode = 1;
}
