/**
 * One caller looping over refused hosts must not fill the audit disk (and so
 * refuse every agent's calls): past its share of a window its refusals are
 * folded into one counted record (review F4). Other callers keep theirs.
 */
import { describe, expect, it } from 'vitest';
import type { AuditEvent, AuditSink } from '../../src/audit/types.js';
import { RefusalLog } from '../../src/egress/refusal-log.js';
import { silentLogger } from '../../src/log.js';

function sink(): { audit: AuditSink; records: AuditEvent[] } {
  const records: AuditEvent[] = [];
  return { records, audit: { append: async (e) => void records.push(e), assertWritable: () => undefined, close: async () => undefined } };
}

describe('egress refusal flood', () => {
  it('a_caller_flooding_refusals_gets_its_first_ones_recorded_and_the_rest_counted_in_one_record', async () => {
    const { audit, records } = sink();
    let now = 1_000;
    const log = new RefusalLog(audit, silentLogger, { windowMs: 1_000, perWindow: 20, now: () => now });
    for (let i = 0; i < 3_000; i++) await log.refuse('agent:loop', { event: 'egress', agent: 'loop', sandbox: 's1', host: `h${i}.evil.example`, outcome: 'denied' });
    // Another caller is not silenced by the first one's flood.
    await log.refuse('agent:calm', { event: 'egress', agent: 'calm', host: 'x.example', outcome: 'denied' });
    now += 1_000;
    log.flushAll();
    await new Promise((r) => setImmediate(r));
    const full = records.filter((r) => r.outcome === 'denied');
    expect(full.filter((r) => r.agent === 'loop')).toHaveLength(20);
    expect(full.filter((r) => r.agent === 'calm')).toHaveLength(1);
    const folded = records.filter((r) => r.outcome === 'suppressed');
    expect(folded).toEqual([expect.objectContaining({ event: 'egress', agent: 'loop', sandbox: 's1', count: 2_980, windowMs: 1_000 })]);
    expect((folded[0]?.hosts as string[]).length).toBe(10);
  });

  it('a_new_window_records_in_full_again_after_the_folded_count_is_written', async () => {
    const { audit, records } = sink();
    let now = 0;
    const log = new RefusalLog(audit, silentLogger, { windowMs: 1_000, perWindow: 2, now: () => now });
    for (let i = 0; i < 5; i++) await log.refuse('agent:a', { event: 'egress', agent: 'a', host: 'h', outcome: 'denied' });
    now = 1_500;
    await log.refuse('agent:a', { event: 'egress', agent: 'a', host: 'h', outcome: 'denied' });
    await new Promise((r) => setImmediate(r));
    expect(records.map((r) => r.outcome)).toEqual(['denied', 'denied', 'suppressed', 'denied']);
    expect(records[2]).toMatchObject({ count: 3 });
  });
});
