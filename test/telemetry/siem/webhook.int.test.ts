/**
 * The webhook sink against a receiver that fails, hangs, answers garbage,
 * then recovers: tool calls are never held up, the backlog grows while it
 * fails and drains after, and every record arrives — none twice, since
 * nothing was acknowledged while it failed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../../helpers/gateway.js';
import { counts, drained, FAST, missing, startSiemGateway, type SiemGateway } from './helpers.js';
import { seqOf, startSilentServer, startWebhookSim, type WebhookSim } from './sims.js';

let t: SiemGateway | undefined;
let sim: WebhookSim | undefined;
afterEach(async () => {
  await t?.close();
  await sim?.close();
  t = undefined;
  sim = undefined;
});

async function calls(g: SiemGateway, n: number): Promise<void> {
  const c = await g.client('laptop-claude');
  for (let i = 0; i < n; i++) {
    const r = await c.callTool({ name: 'fx__echo', arguments: { text: `call ${i}` } });
    expect(r.isError).not.toBe(true);
  }
}

describe('webhook sink', () => {
  it('a sink that is down does not hold up tool calls; the backlog grows, then drains once it is back, and every record arrives exactly once', async () => {
    sim = await startWebhookSim();
    sim.mode = 'busy';
    t = await startSiemGateway([{ name: 'hook', kind: 'webhook', url: sim.url, ...FAST }]);
    await calls(t, 20);
    // Every call went through while the sink refused everything.
    await until(() => sim!.failures >= 2, 'the sink to be tried and fail');
    const during = t.stats();
    expect(during.backlog).toBeGreaterThan(20);
    expect(during.lastError).toMatch(/webhook http:\/\/127\.0\.0\.1:\d+ answered HTTP 503/);
    expect(during.state).toBe('retrying');
    expect(sim.received.events).toEqual([]);

    sim.mode = 'ok';
    const after = await drained(t);
    expect(after.lastError).toBeNull();
    const last = t.records().at(-1)?.seq as number;
    expect(missing(sim.received.events, last)).toEqual([]);
    expect([...counts(sim.received.events).values()].every((n) => n === 1)).toBe(true);
    // In order, OCSF by default, and each batch names itself for a receiver that deduplicates.
    const seqs = sim.received.events.map(seqOf);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(sim.received.events.find((e) => (e.metadata as { event_code: string }).event_code === 'tools/call')).toMatchObject({ class_uid: 6003 });
    expect(sim.received.headers.at(-1)?.['idempotency-key']).toMatch(/^\d+-\d+-[0-9a-f]{16}$/);
  });

  it('a sink that never answers: the send times out and is retried; calls go on; nothing is lost once it answers', async () => {
    sim = await startWebhookSim();
    sim.mode = 'hang';
    t = await startSiemGateway([{ name: 'hook', kind: 'webhook', url: sim.url, ...FAST, timeout: '300ms' }]);
    await calls(t, 5);
    await until(() => t!.stats().lastError?.includes('no answer within 300 ms'), 'a timeout to be reported');
    sim.mode = 'ok';
    await drained(t);
    expect(missing(sim.received.events, t.records().at(-1)?.seq as number)).toEqual([]);
  });

  it('a TCP peer that accepts and never reads: the send times out, calls are unaffected', async () => {
    const silent = await startSilentServer();
    try {
      t = await startSiemGateway([{ name: 'hook', kind: 'webhook', url: `http://127.0.0.1:${silent.port}/x`, ...FAST, timeout: '300ms' }]);
      await calls(t, 5);
      await until(() => t!.stats().failures >= 2, 'two timed-out sends');
      expect(t.stats().lastError).toContain('no answer within 300 ms');
      expect(t.stats().backlog).toBeGreaterThan(5);
    } finally {
      await t?.close();
      t = undefined;
      await silent.close();
    }
  });

  it('a sink that answers garbage (not HTTP) is retried, not trusted; nothing is lost once it answers properly', async () => {
    sim = await startWebhookSim();
    sim.mode = 'garbage';
    t = await startSiemGateway([{ name: 'hook', kind: 'webhook', url: sim.url, ...FAST }]);
    await calls(t, 3);
    await until(() => sim!.failures >= 2, 'garbage answers');
    expect(t.stats().lastError).toMatch(/^webhook http:\/\/127\.0\.0\.1:\d+: .*does not match the HTTP\/1\.1 protocol/);
    expect(sim.received.events).toEqual([]);
    sim.mode = 'ok';
    await drained(t);
    expect(missing(sim.received.events, t.records().at(-1)?.seq as number)).toEqual([]);
  });

  it('the log rotates while it is shipped: every record arrives once, across files', async () => {
    sim = await startWebhookSim();
    t = await startSiemGateway([{ name: 'hook', kind: 'webhook', url: sim.url, format: 'jsonl', batchRecords: 3, ...FAST }], { audit: { maxFileBytes: 3_000 } });
    await calls(t, 25);
    await drained(t);
    const last = t.gw.audit as unknown as { seq: number };
    expect(missing(sim.received.events, last.seq)).toEqual([]);
    expect([...counts(sim.received.events).values()].every((n) => n === 1)).toBe(true);
    const { listAuditFiles } = await import('../../../src/audit/files.js');
    expect(listAuditFiles(`${t.dirs.state}/audit`).length).toBeGreaterThan(5);
  });

  it('a credential header must come from the keychain, and its value is never in a shipped record', async () => {
    sim = await startWebhookSim();
    const value = 'whk-7f3a9c1e2b4d6f80';
    t = await startSiemGateway([{ name: 'hook', kind: 'webhook', url: sim.url, headers: { Authorization: 'Bearer ${secret:siem-hook}' }, ...FAST }], { secrets: { 'siem-hook': value } });
    await calls(t, 2);
    await drained(t);
    expect(sim.received.headers.every((h) => h.authorization === `Bearer ${value}`)).toBe(true);
    expect(sim.received.bodies.join('\n')).not.toContain(value);
  });
});
