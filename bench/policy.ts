/**
 * Policy decision time with 10, 100 and 1,000 rules. Prints; never asserts.
 *
 * "warm": the same agents and tools come back (the usual case: a catalog of
 * tools, a handful of agents), so the per-(agent, connector, tool) candidate
 * list is memoised. "new agent": the per-tool list is memoised, the agent
 * filter runs. "new tool": nothing is memoised; every rule's name globs run.
 */
import { stringify } from 'yaml';
import { evaluate } from '../src/policy/evaluate.js';
import { loadPolicyFiles, memorySource } from '../src/policy/load.js';
import type { CallContext, Policy } from '../src/policy/types.js';

function makeRules(n: number): unknown[] {
  const rules: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const svc = `svc${i % 50}`;
    const id = `r${i}`;
    switch (i % 10) {
      case 0:
        rules.push({ id, match: { agent: `intruder-${i}*`, tool: '*__delete_*' }, effect: 'deny' });
        break;
      case 1:
      case 2:
      case 3:
        rules.push({ id, match: { tool: `${svc}__get_item_${i}`, args: { owner: { equals: 'acme' }, id: { min: 0, max: 1e9 } } }, effect: 'allow' });
        break;
      case 4:
      case 5:
        rules.push({ id, match: { agent: `team-${i % 7}-*`, tool: `${svc}__list_*` }, effect: 'allow', limit: '100/minute' });
        break;
      case 6:
        rules.push({ id, match: { tool: `${svc}__create_*` }, when: 'has(args.count) && args.count > 10', effect: 'ask' });
        break;
      case 7:
        rules.push({ id, match: { tool: `${svc}__*`, args: { path: { regex: '/etc/.*|.*\\.ssh/.*' } } }, effect: 'deny' });
        break;
      case 8:
        rules.push({ id, match: { connector: svc, args: { repo: { in: ['web', 'api', 'infra'] } } }, effect: 'allow' });
        break;
      default:
        rules.push({ id, match: { tool: `${svc}__*`, annotations: { destructiveHint: true } }, effect: 'ask' });
    }
  }
  return rules;
}

function policyWith(n: number): Policy {
  const text = stringify({ version: 1, default: 'deny', rules: makeRules(n) });
  return loadPolicyFiles(['/bench/policy.yaml'], memorySource({ '/bench/policy.yaml': text }));
}

function calls(count: number, fresh: 'none' | 'agent' | 'tool', prefix = ''): CallContext[] {
  const out: CallContext[] = [];
  const verbs = ['get_item_1', 'get_item_12', 'list_things', 'create_thing', 'delete_thing', 'update_thing'];
  for (let i = 0; i < count; i++) {
    const svc = `svc${i % 53}`; // a few connectors no rule names
    const verb = `${verbs[i % verbs.length] ?? 'x'}${fresh === 'tool' ? `_${prefix}${i}` : ''}`;
    out.push({
      agent: fresh === 'none' ? `team-${i % 7}-agent-${i % 5}` : `team-${i % 7}-agent-${prefix}${i}`,
      connector: svc,
      tool: `${svc}__${verb}`,
      upstreamTool: verb,
      args: { owner: i % 3 === 0 ? 'acme' : 'other', id: i, repo: i % 4 === 0 ? 'web' : 'docs', path: i % 9 === 0 ? '/etc/passwd' : 'src/a.ts', count: i % 20 },
      annotations: { readOnlyHint: i % 2 === 0, destructiveHint: i % 11 === 0 },
      time: new Date(1_736_150_400_000 + i * 60_000),
    });
  }
  return out;
}

function measure(policy: Policy, warmup: CallContext[], ctxs: CallContext[], rounds: number): { median: number; p99: number; perSec: number } {
  for (const c of warmup) evaluate(policy, c); // warm up the JIT (and, for warm runs, the memo)
  const samples: number[] = [];
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) {
    for (const c of ctxs) {
      const s = process.hrtime.bigint();
      sink += evaluate(policy, c).effect.length;
      samples.push(Number(process.hrtime.bigint() - s));
    }
  }
  const total = Number(process.hrtime.bigint() - t0);
  if (sink === -1) console.log(sink); // keep the work observable
  samples.sort((a, b) => a - b);
  const at = (q: number) => (samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0) / 1000;
  return { median: at(0.5), p99: at(0.99), perSec: Math.round((samples.length * 1e9) / total) };
}

export async function benchPolicy(opts: { calls?: number; rounds?: number } = {}): Promise<string> {
  const n = opts.calls ?? 2_000;
  const rounds = opts.rounds ?? 10;
  const rows: string[] = [];
  for (const size of [10, 100, 1_000]) {
    const policy = policyWith(size);
    const same = calls(n, 'none');
    const warm = measure(policy, same, same, rounds);
    // A new agent name on every call: the per-tool list is memoised, the agent filter is not.
    const newAgent = measure(policy, calls(n, 'agent', 'w'), calls(n * rounds, 'agent'), 1);
    // A new tool name on every call too: nothing is memoised (worst case; tools come from a finite catalog).
    const newTool = measure(policyWith(size), calls(n, 'tool', 'w'), calls(n * rounds, 'tool'), 1);
    for (const [kind, m] of [['warm', warm], ['new agent each call', newAgent], ['new tool each call', newTool]] as const) {
      rows.push(`| ${size.toLocaleString('en-US')} | ${kind} | ${m.median.toFixed(2)} | ${m.p99.toFixed(2)} | ${m.perSec.toLocaleString('en-US')} |`);
    }
  }
  return [
    '### Policy decision time (`evaluate`, one thread)',
    '',
    '| rules | candidate lists | median µs | p99 µs | decisions/s |',
    '|---:|---|---:|---:|---:|',
    ...rows,
    '',
    `Node ${process.version}; ${n * rounds} decisions per row; times include one \`process.hrtime.bigint()\` pair (≈0.05 µs).`,
  ].join('\n');
}
