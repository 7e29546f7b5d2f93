/**
 * The model in /llm/<provider> is the agent's text. A provider that allows a
 * glob (`claude-*`, `*`) lets a hostile agent send any number of made-up
 * model names that pass the gateway's check and that the provider then
 * refuses: they must not take the model label's places, or every real model
 * used after them is counted under `_other`.
 */
import { describe, expect, it } from 'vitest';
import { OTHER, UNKNOWN } from '../../src/telemetry/labels.js';
import { GatewayMetrics } from '../../src/telemetry/metrics.js';
import { parseExposition, valueOf } from './prom-text.js';

describe('model label and made-up model names', () => {
  it('random model names the provider refused do not use up the model label: a real model keeps its own label', async () => {
    const m = new GatewayMetrics({ processMetrics: false, maxModels: 10, knownProvider: (p) => p === 'anth' });
    for (let i = 0; i < 1_000; i++) {
      m.audit.record({ event: 'model.call', agent: 'mallory', provider: 'anth', model: `claude-${i.toString(36)}x${Math.random().toString(36).slice(2)}`, decision: 'allow', outcome: 'provider_error', status: 404 });
    }
    m.audit.record({ event: 'model.call', agent: 'alice', provider: 'anth', model: 'claude-sonnet', decision: 'allow', outcome: 'ok', inputTokens: 3 });
    m.audit.record({ event: 'model.call', agent: 'alice', provider: 'anth', model: 'claude-sonnet', decision: 'allow', outcome: 'provider_error', status: 529 });
    const text = await m.render();
    const s = parseExposition(text);
    expect(valueOf(s, 'gatehouse_model_calls_total', { agent: 'alice', model: 'claude-sonnet' })).toBe(2);
    expect(valueOf(s, 'gatehouse_model_calls_total', { agent: 'mallory', model: UNKNOWN })).toBe(1_000);
    expect(valueOf(s, 'gatehouse_model_calls_total', { model: OTHER })).toBe(0);
    expect(text).not.toMatch(/claude-[0-9a-z]+x/);
  });
});
