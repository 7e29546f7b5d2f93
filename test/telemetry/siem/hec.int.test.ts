/**
 * The Splunk HEC sink against a simulator built from Splunk's documented
 * request and answer shapes (sims.ts): success, indexer acknowledgment,
 * 503 busy with retry, 403 invalid token, 400 invalid data format.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { stdioFixture, until } from '../../helpers/gateway.js';
import { counts, drained, FAST, missing, startSiemGateway, type SiemGateway } from './helpers.js';
import { seqOf, startHecSim, type HecSim } from './sims.js';

const TOKEN = '8f2c1d5e-7a3b-4c9d-9e1f-0a2b3c4d5e6f';
let t: SiemGateway | undefined;
let sim: HecSim | undefined;
afterEach(async () => {
  await t?.close();
  await sim?.close();
  t = undefined;
  sim = undefined;
});

const hec = (extra: Record<string, unknown> = {}) => ({ name: 'splunk', kind: 'splunk-hec', url: sim?.url, token: '${secret:splunk-hec-token}', ...FAST, ...extra });

async function echo(g: SiemGateway, texts: string[]): Promise<void> {
  const c = await g.client('laptop-claude');
  for (const text of texts) expect((await c.callTool({ name: 'fx__echo', arguments: { text } })).isError).not.toBe(true);
}

describe('Splunk HEC sink', () => {
  it('sends OCSF events in HEC envelopes with the token in "Authorization: Splunk", and Splunk answers success', async () => {
    sim = await startHecSim({ tokens: [TOKEN] });
    t = await startSiemGateway([hec({ index: 'security' })], { secrets: { 'splunk-hec-token': TOKEN } });
    await echo(t, ['a', 'b']);
    await drained(t);
    expect(sim.received.headers.every((h) => h.authorization === `Splunk ${TOKEN}`)).toBe(true);
    const envelope = JSON.parse(sim.received.bodies[0]?.split('\n')[0] ?? '{}') as Record<string, unknown>;
    expect(envelope).toMatchObject({ source: 'gatehouse', sourcetype: 'gatehouse:ocsf', index: 'security' });
    expect(typeof envelope.time).toBe('number');
    expect(missing(sim.received.events, t.records().at(-1)?.seq as number)).toEqual([]);
    // The token itself is never in what is shipped.
    expect(sim.received.bodies.join('')).not.toContain(TOKEN);
  });

  it('503 "Server is busy" is retried (Retry-After honoured) until it passes; nothing is lost or doubled', async () => {
    sim = await startHecSim({ tokens: [TOKEN] });
    sim.mode = 'busy';
    t = await startSiemGateway([hec()], { secrets: { 'splunk-hec-token': TOKEN } });
    await echo(t, ['x', 'y', 'z']);
    await until(() => sim!.failures >= 3, 'three busy answers');
    expect(t.stats().lastError).toMatch(/answered HTTP 503 \(code 9: server is busy\)/);
    sim.mode = 'ok';
    await drained(t);
    expect(missing(sim.received.events, t.records().at(-1)?.seq as number)).toEqual([]);
    expect([...counts(sim.received.events).values()].every((n) => n === 1)).toBe(true);
  });

  it('403 "Invalid token": nothing is dropped while the token is wrong; once the secret is set right, everything arrives', async () => {
    sim = await startHecSim({ tokens: [TOKEN] });
    t = await startSiemGateway([hec()], { secrets: { 'splunk-hec-token': 'wrong-token-value-123' } });
    await echo(t, ['1', '2']);
    await until(() => t!.stats().failures >= 2, 'refused sends');
    expect(t.stats().lastError).toMatch(/answered HTTP 403 \(code 4: invalid token\) \(the sink refuses the credential: check its secret\)/);
    expect(t.stats().lastError).not.toContain('wrong-token-value-123');
    expect(sim.received.events).toEqual([]);
    // Rotated in the store: the next send reads it (no restart).
    await t.secrets.set('splunk-hec-token', TOKEN);
    await drained(t);
    expect(missing(sim.received.events, t.records().at(-1)?.seq as number)).toEqual([]);
  });

  it('a 200 that is not HEC\'s success (a proxy\'s HTML page, garbage) is not taken as an acknowledgment', async () => {
    sim = await startHecSim({ tokens: [TOKEN] });
    sim.mode = 'garbage-200';
    t = await startSiemGateway([hec()], { secrets: { 'splunk-hec-token': TOKEN } });
    await echo(t, ['g']);
    await until(() => sim!.failures >= 2, 'garbage answers');
    expect(t.stats().lastError).toMatch(/answered 200 without HEC's success \(\{"code":0\}\): <html>\\u0000\\u001b\[2J not json<\/html>/);
    expect(t.stats().lastShippedSeq).toBeNull();
    sim.mode = 'ok';
    await drained(t);
    expect(missing(sim.received.events, t.records().at(-1)?.seq as number)).toEqual([]);
  });

  it('with indexer acknowledgment a batch counts as shipped only once Splunk says it is indexed; one never acknowledged is sent again', async () => {
    sim = await startHecSim({ tokens: [TOKEN], ack: true });
    sim.ackDelayPolls = Number.POSITIVE_INFINITY;
    t = await startSiemGateway([hec({ ack: true, ackTimeout: '300ms' })], { secrets: { 'splunk-hec-token': TOKEN } });
    await echo(t, ['p', 'q']);
    await until(() => t!.stats().lastError?.includes('not acknowledged within 300 ms'), 'an unacknowledged batch');
    // Sent again after the ack timeout; meanwhile the cursor has not moved, and every request named the channel.
    await until(() => sim!.received.bodies.filter((b) => b.includes('"event"')).length >= 2, 'the batch sent again');
    expect(t.stats().lastShippedSeq).toBeNull();
    expect(sim.received.headers.every((h) => typeof h['x-splunk-request-channel'] === 'string')).toBe(true);
    sim.ackDelayPolls = 2;
    await drained(t);
    expect(sim.ackPolls).toBeGreaterThanOrEqual(3);
    expect(missing(sim.received.events, t.records().at(-1)?.seq as number)).toEqual([]);
  });

  it('400 "Invalid data format" for one huge record: the batch is split, the others arrive whole, that one arrives cut down and marked', async () => {
    sim = await startHecSim({ tokens: [TOKEN] });
    sim.maxEventBytes = 20_000;
    t = await startSiemGateway([hec()], { secrets: { 'splunk-hec-token': TOKEN } });
    // Tool arguments are cut at 1 KiB per string in the log; a record can still be ~64 KiB (many fields, or an upstream's text).
    await echo(t, ['small before']);
    await t.gw.audit.append({ event: 'test.big', agent: 'laptop-claude', note: 'H'.repeat(50_000) });
    await echo(t, ['small after']);
    await drained(t);
    const last = t.records().at(-1)?.seq as number;
    expect(missing(sim.received.events, last)).toEqual([]);
    const cut = sim.received.events.filter((e) => (e.metadata as { is_truncated?: boolean }).is_truncated === true);
    expect(cut).toHaveLength(1);
    const big = t.records().find((r) => r.event === 'test.big');
    expect(seqOf(cut[0] as Record<string, unknown>)).toBe(big?.seq);
    expect(JSON.stringify(cut[0]).length).toBeLessThan(20_000);
    expect((cut[0]?.metadata as { untruncated_size: number }).untruncated_size).toBeGreaterThan(20_000);
    expect(t.stats().truncated).toBe(1);
  });

  it('a secret value never leaves in shipped records: the audit record holds it redacted, and no form of it is in any body', async () => {
    const secret = 'ghp_Zx81kQ0pLm2Nn3Bb4Vv5Cc6Xx7';
    sim = await startHecSim({ tokens: [TOKEN] });
    t = await startSiemGateway([hec(), { name: 'raw', kind: 'splunk-hec', url: sim.url, token: '${secret:splunk-hec-token}', format: 'jsonl', ...FAST }], {
      secrets: { 'splunk-hec-token': TOKEN, 'fx-token': secret },
      connectors: (log) => [stdioFixture('fx', log, {}, { FX_TOKEN: '${secret:fx-token}' })],
    });
    // The agent sends the value itself (it got it somehow): the record stores it redacted.
    await echo(t, [`leak ${secret} leak`, Buffer.from(secret).toString('base64')]);
    await drained(t, 'splunk');
    await drained(t, 'raw');
    const audit = JSON.stringify(t.records());
    expect(audit).toContain('[REDACTED:fx-token]');
    const shipped = sim.received.bodies.join('\n');
    expect(shipped).toContain('REDACTED:fx-token');
    for (const form of [secret, Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('hex'), TOKEN]) expect(shipped).not.toContain(form);
  });
});
