/**
 * A hostile upstream floods what servers may send clients (issue #24):
 * progress and log notifications during a call, and sampling requests in a
 * call and outside any call. Through a real gateway with
 * test/fixtures/hostile-notify.mjs (stdio) and faulty-http.mjs (HTTP), while
 * an innocent agent on an innocent connector measures its own latency.
 */
import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { LoggingMessageNotificationSchema, type LoggingMessageNotification } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../src/upstreams/limits.js';
import { MCP_HEADERS, spawnListening, startTestGateway, until, type HttpFixture, type TestGateway } from '../helpers/gateway.js';
import { executedRecords, INNOCENT_P99_BOUND_MS, innocentConnector, measureInnocent, resources, settled } from '../helpers/innocent.js';
import { FAULTY_HTTP, FIXTURES, forceGc } from './helpers.js';

const HOSTILE = join(FIXTURES, 'hostile-notify.mjs');
const N = 100_000;

let t: TestGateway;
let web: HttpFixture;
let tallyFile: string;
beforeAll(async () => {
  // settled() collects garbage before it compares RSS.
  (globalThis as { gc?: () => void }).gc = forceGc;
  web = await spawnListening(FAULTY_HTTP, ['0']);
  t = await startTestGateway({
    connectors: (log) => {
      tallyFile = join(log, '..', 'tally.json');
      const hostile = (name: string) => ({ name, kind: 'stdio', command: 'node', args: [HOSTILE], env: { FIXTURE_TALLY: tallyFile }, timeouts: { call: '120s' } });
      return [
        innocentConnector(log),
        hostile('evil'),
        // Its own connector: its refusal counts are not the outside-call test's.
        hostile('evil-in-call'),
        { name: 'noisy', kind: 'http', url: web.url, timeouts: { call: '120s' }, tools: { allow: ['flood'] } },
      ];
    },
  });
});
afterAll(async () => {
  await t?.close();
  await web?.close();
});

/** A tools/call on a raw connection whose response is paused at once and never read: an agent that does not read its stream. */
async function unreadCall(name: string, args: Record<string, unknown>): Promise<{ req: ClientRequest; res: Promise<IncomingMessage> }> {
  const token = await t.mint('mallory-reader');
  const sid = await t.openSession(token);
  const body = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: args, _meta: { progressToken: 'p1' } } });
  const req = httpRequest({
    host: '127.0.0.1',
    port: t.port,
    method: 'POST',
    path: '/mcp',
    headers: { ...MCP_HEADERS, host: `127.0.0.1:${t.port}`, authorization: `Bearer ${token}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
  });
  const res = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', (r) => {
      r.pause();
      resolve(r);
    });
    req.once('error', reject);
  });
  req.end(body);
  return { req, res };
}

/** Samples this process's RSS every 50 ms while `work` runs; the highest seen. */
async function peakRss<T>(work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = process.memoryUsage().rss;
  const tick = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  try {
    const result = await work();
    return { result, peak: Math.max(peak, process.memoryUsage().rss) };
  } finally {
    clearInterval(tick);
  }
}

describe('hostile upstream: notification and request floods', { timeout: 180_000 }, () => {
  const UNREAD = [
    { transport: 'stdio', connector: 'evil', tool: 'evil__flood', n: N },
    { transport: 'HTTP (SSE)', connector: 'noisy', tool: 'noisy__flood', n: N / 2 },
  ];
  it.each(UNREAD)('progress/log flood over $transport to an agent that does not read its stream: throttled and counted, RSS bounded, one bounded record', async ({ transport, connector, tool, n }) => {
    forceGc();
    const base = resources();
    const before = executedRecords(t, connector).length;
    const started = performance.now();
    const { result: m, peak } = await peakRss(() =>
      measureInnocent(t, async () => {
        const call = await unreadCall(tool, { n });
        await call.res;
        // The outcome record is written before the result is handed to the agent: the call has ended upstream.
        await until(() => executedRecords(t, connector).length > before, 'the flood call to end', 150_000);
        call.req.destroy();
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const growthMiB = (peak - base.rss) / 2 ** 20;
    console.log(`${transport} flood of ${2 * n} notifications: ${seconds.toFixed(1)} s, peak RSS +${growthMiB.toFixed(0)} MiB, innocent p50 ${m.p50.toFixed(1)} ms p99 ${m.p99.toFixed(1)} ms max ${m.max.toFixed(1)} ms (${m.samples.length} samples)`);
    expect(m.errors).toEqual([]);
    expect(m.p99).toBeLessThan(INNOCENT_P99_BOUND_MS);
    // Was +2.4 GB with every notification queued for the agent.
    expect(growthMiB).toBeLessThan(256);

    const records = executedRecords(t, connector).slice(before);
    expect(records).toHaveLength(1);
    const rec = records[0] as Record<string, number | string>;
    expect(rec).toMatchObject({ tool, outcome: 'ok' });
    expect(JSON.stringify(rec).length).toBeLessThan(4096);
    // At most notificationsPerSecond of each per second of the call (plus one second's burst and the final progress).
    const allowed = DEFAULT_LIMITS.notificationsPerSecond * (Math.ceil(seconds) + 1) + 1;
    expect(rec.progressCoalesced).toBeGreaterThanOrEqual(n - allowed);
    expect(rec.logsDropped).toBeGreaterThanOrEqual(n - allowed);
    const after = await settled(base).catch((e: unknown) => {
      throw new Error(`${String(e)}: now ${JSON.stringify(resources())}`);
    });
    console.log(`after the flood: RSS ${Math.round(base.rss / 2 ** 20)} -> ${Math.round(after.rss / 2 ** 20)} MiB, fds ${base.fds} -> ${after.fds}`);
  });

  it('progress/log flood to an agent that reads: it gets the final progress before the result, and one notice of how many log messages were dropped', async () => {
    const c = await t.client('alice');
    const progress: number[] = [];
    const logs: Array<LoggingMessageNotification['params']> = [];
    c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params));
    const r = await c.callTool({ name: 'evil__flood', arguments: { n: 20_000 } }, undefined, { onprogress: (p) => void progress.push(p.progress), timeout: 120_000 });
    const progressAtResult = progress.length;
    const logsAtResult = logs.length;
    expect(r.content).toEqual([{ type: 'text', text: 'flooded 20000' }]);
    expect(progress.at(-1)).toBe(20_000);
    expect(progressAtResult).toBeLessThan(20_000);
    const notice = logs.at(-1);
    expect(notice?.logger).toBe('gatehouse');
    expect(String(notice?.data)).toMatch(/^Gatehouse dropped \d+ log messages from the upstream during this call \(over its limit of 50 per second\)\.$/);
    const dropped = Number(/dropped (\d+)/.exec(String(notice?.data))?.[1]);
    // Every message is either delivered or counted; the notice comes before the result.
    expect(logsAtResult - 1 + dropped).toBe(20_000);
    const rec = executedRecords(t, 'evil').at(-1);
    expect(rec).toMatchObject({ tool: 'evil__flood', logsDropped: dropped, progressCoalesced: 20_000 - progressAtResult });
  });

  it('sampling requests in one call (5,000): the call gets limits.requestsPerMinute, the rest refused RATE_LIMITED; one refusal record in full', async () => {
    const c = await t.client('bob');
    const n = 5_000;
    const r = await c.callTool({ name: 'evil-in-call__sample_in_call', arguments: { n } });
    const s = JSON.parse((r.content as Array<{ text: string }>)[0]?.text ?? '{}') as { sent: number; answered: number; rateLimited: number; errors: Record<string, number> };
    expect(s).toMatchObject({ sent: n, answered: 0, errors: { '-32600': n } });
    const inRate = n - s.rateLimited;
    expect(inRate).toBeGreaterThanOrEqual(DEFAULT_LIMITS.requestsPerMinute);
    expect(inRate).toBeLessThanOrEqual(DEFAULT_LIMITS.requestsPerMinute + 5);
    const records = t.audit().filter((a) => a.event === 'sampling.request' && a.connector === 'evil-in-call');
    // Each one tied to the call (stdio: the only call in flight).
    expect(records.every((a) => a.agent === 'bob' && a.tool === 'evil-in-call__sample_in_call')).toBe(true);
    expect(records.filter((a) => a.rateLimited !== true)).toHaveLength(inRate);
    expect(records.filter((a) => a.rateLimited === true)).toEqual([expect.objectContaining({ reason: expect.stringContaining('in one call') })]);
    expect(executedRecords(t, 'evil-in-call')).toEqual([expect.objectContaining({ tool: 'evil-in-call__sample_in_call', outcome: 'ok' })]);
  });

  it('sampling requests outside any call (100,000, with deny): refused past the rate with a clear error, aggregated in the audit, the last summary written at shutdown', async () => {
    forceGc();
    const base = resources();
    const c = await t.client('bob');
    const samplingRecords = () => t.audit().filter((a) => a.event === 'sampling.request' && a.connector === 'evil');
    expect(samplingRecords()).toEqual([]);
    const tally = () => JSON.parse(readFileSync(tallyFile, 'utf8')) as { sent: number; answered: number; rateLimited: number; errors: Record<string, number> };
    const started = performance.now();
    const m = await measureInnocent(t, async () => {
      await c.callTool({ name: 'evil__sample_outside', arguments: { n: N } });
      // No other call to this connector meanwhile: each request is outside any call.
      await until(() => existsSync(tallyFile), 'every request to be answered', 150_000);
    });
    const seconds = (performance.now() - started) / 1000;
    const s = tally();
    expect(s.sent).toBe(N);
    console.log(`${N} sampling requests outside any call: ${seconds.toFixed(1)} s, ${samplingRecords().length} audit records before shutdown, innocent p50 ${m.p50.toFixed(1)} ms p99 ${m.p99.toFixed(1)} ms`);
    expect(m.errors).toEqual([]);
    expect(m.p99).toBeLessThan(INNOCENT_P99_BOUND_MS);
    expect(s.answered).toBe(0);
    // All refused with -32600; past the rate, saying so (data.code RATE_LIMITED).
    expect(s.errors).toEqual({ '-32600': N });
    const perMinute = DEFAULT_LIMITS.requestsPerMinute;
    const inRate = N - s.rateLimited;
    expect(inRate).toBeGreaterThanOrEqual(perMinute);
    expect(inRate).toBeLessThanOrEqual(perMinute + Math.ceil(seconds * (perMinute / 60)) + 1);

    // In-rate requests: one record each (denied: sampling is not allowed). Past it: the first of each
    // interval (60 s) in full, the rest counted into one summary per interval.
    const live = samplingRecords();
    expect(live.filter((a) => a.rateLimited !== true)).toHaveLength(inRate);
    const full = live.filter((a) => a.rateLimited === true && a.repeated === undefined);
    expect(full[0]).toMatchObject({ decision: 'deny', outcome: 'denied', reason: expect.stringContaining('outside any call') });
    expect(full.length).toBeLessThanOrEqual(Math.ceil(seconds / 60) + 1);
    await settled(base);

    await t.gw.close(5_000);
    const summaries = samplingRecords().filter((a) => typeof a.repeated === 'number');
    expect(summaries.length).toBeGreaterThanOrEqual(1);
    expect(summaries.every((a) => a.rateLimited === true && a.inCalls === 0)).toBe(true);
    // Every refusal accounted for: a record of its own or a count in a summary.
    expect(full.length + summaries.reduce((sum, a) => sum + Number(a.repeated), 0)).toBe(s.rateLimited);
    // The last summary was written while the gateway stopped, before its last record.
    const stop = t.audit().find((a) => a.event === 'gateway.stop');
    expect(Number(summaries.at(-1)?.seq)).toBeLessThan(Number(stop?.seq));
  });
});
