/**
 * A hostile upstream can't break the audit (issue #24), over stdio and over
 * HTTP (test/fixtures/hostile-audit.mjs): a huge error message, a result
 * nested 5,000 deep, a number JSON cannot carry. Each attack runs while an
 * innocent agent on an innocent connector measures its own latency; after
 * it the gateway's RSS and fds are back near their baseline, and the audit
 * holds exactly one bounded record per executed call.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_RECORD_BYTES } from '../../src/audit/bound.js';
import { MAX_RESULT_DEPTH } from '../../src/broker/pipeline.js';
import { spawnListening, startTestGateway, type HttpFixture, type TestGateway } from '../helpers/gateway.js';
import { INNOCENT_P99_BOUND_MS, executedRecords, innocentConnector, measureInnocent, resources, settled, type InnocentMeasure, type Resources } from '../helpers/innocent.js';
import { FIXTURES } from './helpers.js';

const HOSTILE = join(FIXTURES, 'hostile-audit.mjs');
/** What the red team's stdio upstream sent (a 9 MB audit record then). */
const HUGE = 9_000_000;

function expectInnocentUnharmed(m: InnocentMeasure): void {
  expect(m.errors).toEqual([]);
  expect(m.samples.length).toBeGreaterThan(0);
  expect(m.p99).toBeLessThan(INNOCENT_P99_BOUND_MS);
}

describe.each(['stdio', 'http'] as const)('a hostile %s upstream attacks the audit', (kind) => {
  let t: TestGateway;
  let fixture: HttpFixture | undefined;
  let agent: Client;
  let base: Resources;

  async function attack(tool: string, args: Record<string, unknown>) {
    const m = await measureInnocent(t, () => agent.callTool({ name: `evil__${tool}`, arguments: args }));
    expectInnocentUnharmed(m);
    await settled(base);
    const result = m.result as { isError?: boolean; content: Array<{ text?: string }>; _meta?: Record<string, unknown> };
    const recs = executedRecords(t, 'evil').filter((r) => r.tool === `evil__${tool}`);
    return { result, text: result.content[0]?.text ?? '', recs };
  }

  beforeAll(async () => {
    fixture = kind === 'http' ? await spawnListening(HOSTILE, ['http', '0']) : undefined;
    const evil = fixture ? { name: 'evil', kind: 'http', url: fixture.url } : { name: 'evil', kind: 'stdio', command: 'node', args: [HOSTILE, 'stdio'] };
    t = await startTestGateway({ connectors: (log) => [innocentConnector(log), evil] });
    agent = await t.client('alice');
    expect((await agent.callTool({ name: 'evil__ok', arguments: {} })).isError).toBeUndefined();
    base = resources();
  });

  afterAll(async () => {
    await t?.close();
    await fixture?.close();
  });

  it(`a ${HUGE / 1e6} MB error message: a tool error for the agent, one bounded record with the message cut and its size noted`, async () => {
    const { result, recs } = await attack('huge_error', { bytes: HUGE });
    expect(result.isError).toBe(true);
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ outcome: 'error', error: { code: 'UPSTREAM_ERROR' } });
    const error = recs[0]?.error as { code: string; message: string };
    expect(error.message.length).toBeLessThan(1100);
    const size = Number(/…\[truncated, (\d+) bytes\]$/.exec(error.message)?.[1]);
    expect(size).toBeGreaterThanOrEqual(HUGE);
  });

  it('structuredContent nested 5,000 deep: a tool error naming the depth (not -32603), and a record that says so', async () => {
    const { result, text, recs } = await attack('deep', { depth: 5_000 });
    expect(result.isError).toBe(true);
    expect(recs).toHaveLength(1);
    expect(text).toBe(`the connector's result is nested deeper than ${MAX_RESULT_DEPTH} levels`);
    expect(recs[0]).toMatchObject({ outcome: 'error', error: { code: 'UPSTREAM_PROTOCOL', message: text } });
  });

  it('1e400 in a result does not reach the agent as null: a tool error, recorded', async () => {
    const { result, text, recs } = await attack('nonfinite', {});
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result)).not.toContain('"n":null');
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ outcome: 'error', error: { code: 'UPSTREAM_PROTOCOL', message: text } });
    expect(text).toContain('a number JSON cannot carry');
  });

  it('the audit: exactly one outcome per executed call (each intent closed once), every line within the bound, the chain intact', async () => {
    const audit = t.audit();
    const intents = audit.filter((r) => r.event === 'tools/call.intent' && r.connector === 'evil').map((r) => r.call);
    const outcomes = executedRecords(t, 'evil').map((r) => r.call);
    expect(intents.length).toBeGreaterThanOrEqual(4);
    expect([...outcomes].sort()).toEqual([...intents].sort());
    const raw = readFileSync(join(t.dirs.state, 'audit', 'audit.jsonl'), 'utf8').split('\n').filter((l) => l !== '');
    for (const line of raw) expect(Buffer.byteLength(line) + 1).toBeLessThanOrEqual(MAX_RECORD_BYTES);
  });
});
