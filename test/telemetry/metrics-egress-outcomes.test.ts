/**
 * An egress outcome is not always the gateway's own word: a connection that
 * fails says `error: upstream <message>`, and the message can be the
 * upstream's doing (an HTTP answer Node refuses names the header it chose:
 * `Invalid character in header content ["x-…"]`). A hostile agent with egress
 * to a host it runs can make as many distinct outcomes as it likes: they
 * must not become label values, or they take the outcome label's places and
 * the outcomes alerts watch (denied, address-refused) are counted as `_other`.
 */
import { describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../src/telemetry/metrics.js';
import { parseExposition, valueOf } from './prom-text.js';

describe('egress outcome label', () => {
  it('upstream-chosen error outcomes share one label value; denied and address-refused keep theirs', async () => {
    const m = new GatewayMetrics({ processMetrics: false });
    for (let i = 0; i < 200; i++) m.audit.record({ event: 'egress', agent: 'mallory', decision: 'allow', outcome: `error: Invalid character in header content ["x-${i}"]` });
    m.audit.record({ event: 'egress', agent: 'mallory', decision: 'deny', outcome: 'denied' });
    m.audit.record({ event: 'egress', agent: 'mallory', decision: 'allow', outcome: 'address-refused' });
    const text = await m.render();
    const s = parseExposition(text);
    expect(valueOf(s, 'gatehouse_egress_decisions_total', { outcome: 'denied' })).toBe(1);
    expect(valueOf(s, 'gatehouse_egress_decisions_total', { outcome: 'address-refused' })).toBe(1);
    expect(valueOf(s, 'gatehouse_egress_decisions_total', { outcome: 'error' })).toBe(200);
    expect(text).not.toContain('x-1');
  });
});
