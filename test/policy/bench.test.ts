import { describe, expect, it } from 'vitest';
import { benchPolicy } from '../../bench/policy.js';

describe('bench/policy.ts', () => {
  it('returns a markdown table with rows for 10, 100 and 1,000 rules (timings are printed, never asserted)', async () => {
    const md = await benchPolicy({ calls: 20, rounds: 1 });
    expect(md).toContain('| rules | candidate lists | median µs | p99 µs | decisions/s |');
    for (const n of ['10', '100', '1,000']) expect(md).toMatch(new RegExp(`^\\| ${n} \\| warm \\|`, 'm'));
  });
});
