/**
 * A hostile Streamable HTTP upstream (test/fixtures/hostile-http.mjs) against a
 * real gateway (issue #24): huge results, huge and paged-forever tool lists,
 * list_changed storms, calls that time out with their streams still talking,
 * progress that never ends, -32000 answers and 1e400. Each attack runs while an
 * innocent agent on an innocent connector measures its own latency; afterwards
 * the gateway's RSS and fds are back at their baseline and the audit holds one
 * record per executed call. Attack sizes are scaled down with small per-connector
 * limits, except where the default limit is the point.
 */
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateMessageRequestSchema, LoggingMessageNotificationSchema, ToolListChangedNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { spawnListening, startTestGateway, until, type HttpFixture, type TestGateway } from '../helpers/gateway.js';
import { executedRecords, innocentConnector, INNOCENT_P99_BOUND_MS, measureInnocent, resources, settled } from '../helpers/innocent.js';
import { FIXTURES } from './helpers.js';

const HOSTILE = join(FIXTURES, 'hostile-http.mjs');

let fx: HttpFixture;
let t: TestGateway;
let alice: Client;
let bystander: Client;
const logLines: Array<Record<string, unknown>> = [];

interface Stats {
  toolsList: number;
  listsByTag: Record<string, number>;
  calls: number;
  open: number;
  closedEarly: number;
  bytesSent: number;
  resumes: number;
}
const stats = async () => (await (await fetch(`http://127.0.0.1:${fx.port}/stats`)).json()) as Stats;
const status = (name: string) => t.gw.gateway.report().find((r) => r.name === name)?.status as { state: string; reason?: string } | undefined;
const text = (r: unknown) => ((r as CallToolResult).content as Array<{ text?: string }>)[0]?.text ?? '';
const call = (name: string, args: Record<string, unknown> = {}, client = alice) => client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
const toolNames = async (client = alice) => (await client.listTools()).tools.map((x) => x.name);

beforeAll(async () => {
  fx = await spawnListening(HOSTILE, ['0']);
  const logs = new PassThrough();
  logs.on('data', (c: Buffer) => {
    for (const l of c.toString('utf8').split('\n')) if (l.trim() !== '') logLines.push(JSON.parse(l) as Record<string, unknown>);
  });
  const http = (name: string, extra: Record<string, unknown> = {}, query = '') => ({ name, kind: 'http', url: `${fx.url}${query}`, ...extra });
  t = await startTestGateway({
    connectors: (log) => [
      innocentConnector(log),
      http('capped', { limits: { resultBytes: '64K' }, timeouts: { call: '10s' } }),
      http('big', { timeouts: { call: '30s' } }),
      http('hangs', { timeouts: { call: '400ms', callMax: '5s' }, sampling: 'allow' }),
      http('hangfast', { timeouts: { call: '100ms' } }),
      http('progress', { timeouts: { call: '300ms' } }),
      http('stormy', { limits: { relistsPerMinute: 60 } }, '?tag=stormy'),
      http('growing', { limits: { tools: 40 } }, '?tools=10&tag=growing'),
      http('many', { limits: { tools: 1000 } }, '?tools=5000&page=500'),
      http('fat', { limits: { toolListBytes: '1M' } }, '?tools=20&pad=100000'),
      // 4 M tools over 50 pages, at the default limits.
      http('millions', {}, '?tools=4000000&page=80000'),
    ],
    runtime: { logger: createLogger({ level: 'info', destination: logs }) },
  });
  for (const c of ['innocent', 'capped', 'big', 'hangs', 'hangfast', 'progress', 'stormy', 'growing']) await until(() => status(c)?.state === 'ready', `${c} to be ready`, 20_000);
  alice = await t.client('alice');
  bystander = await t.client('bystander');
});

afterAll(async () => {
  await t?.close();
  await fx?.close();
});

/**
 * Runs `attack` while the bystander measures its latency; then checks the
 * innocent's p99, that RSS and fds returned to their baseline, and that the
 * audit got exactly `executed` records of executed calls on `connector`.
 */
async function underAttack<T>(connector: string, executed: number, attack: () => Promise<T>, opts: { rssSlack?: number } = {}): Promise<T> {
  const base = resources();
  const before = executedRecords(t, connector).length;
  const m = await measureInnocent(t, attack, { client: bystander });
  expect(m.errors).toEqual([]);
  expect(m.samples.length).toBeGreaterThan(0);
  expect(m.p99, `innocent p99 ${Math.round(m.p99)} ms (p50 ${Math.round(m.p50)}, max ${Math.round(m.max)})`).toBeLessThan(INNOCENT_P99_BOUND_MS);
  await settled(base, opts.rssSlack === undefined ? {} : { rssSlack: opts.rssSlack });
  await until(() => executedRecords(t, connector).length - before >= executed, `${executed} audit records for ${connector}`, 5_000).catch(() => undefined);
  expect(executedRecords(t, connector).length - before).toBe(executed);
  return m.result;
}

describe('result size (limits.resultBytes)', () => {
  it('a 20 MiB result against a 64 KiB limit (JSON, SSE, announced in Content-Length): a tool error naming size, limit and fix; the stream is cut off', async () => {
    const variants = [{ sse: false }, { sse: true }, { sse: false, announce: true }];
    const sent0 = (await stats()).bytesSent;
    const results = await underAttack('capped', variants.length, () => Promise.all(variants.map((v) => call('capped__huge', { mb: 20, ...v }))));
    for (const r of results) {
      expect(r.isError).toBe(true);
      expect(text(r)).toMatch(/^connector "capped" sent a (result|message) of more than 64 KiB/);
      expect(text(r)).toContain("raise limits.resultBytes in the connector's registry entry");
    }
    expect(text(results[2])).toContain('it announced');
    // Each response was abandoned early: far less than the 60 MiB asked for left the upstream.
    await until(async () => (await stats()).open === 0, 'the upstream to see its streams closed');
    expect((await stats()).bytesSent - sent0).toBeLessThan(20 * 2 ** 20);
    const records = executedRecords(t, 'capped').slice(-3);
    for (const r of records) expect(r).toMatchObject({ outcome: 'error', error: { code: 'UPSTREAM_PROTOCOL', message: expect.stringContaining('limits.resultBytes') } });
  });

  it('within the limit passes: a 60 KiB result, and 200 messages of 1 KiB on one stream (each SSE event counts on its own)', async () => {
    const r = await call('capped__huge', { mb: 60 / 1024 });
    expect(r.isError).not.toBe(true);
    expect(text(r)).toHaveLength(60 * 1024);
    expect(text(await call('capped__chatty', { events: 200, bytes: 1024 }))).toBe('chatted 200');
  });

  it('six 200 MB results at once (64 KiB limit): all refused at the cap, none held', async () => {
    const results = await underAttack('capped', 6, () => Promise.all([0, 1, 2, 3, 4, 5].map((i) => call('capped__huge', { mb: 200, sse: i % 2 === 0 }))));
    for (const r of results) expect(text(r)).toMatch(/more than 64 KiB.*limits\.resultBytes/);
    await until(async () => (await stats()).open === 0, 'the upstream to see its streams closed');
  });

  it('200 MB results at the default limit (16 MiB), as JSON and as SSE: refused at 16 MiB, memory back to baseline', async () => {
    const results = await underAttack('big', 2, () => Promise.all([call('big__huge', { mb: 200 }), call('big__huge', { mb: 200, sse: true })]), { rssSlack: 128 * 2 ** 20 });
    expect(text(results[0])).toMatch(/^connector "big" sent a result of more than 16 MiB, over its limit; the gateway stopped reading after [\d,]+ bytes/);
    expect(text(results[1])).toMatch(/^connector "big" sent a message of more than 16 MiB/);
    await until(async () => (await stats()).open === 0, 'the upstream to see its streams closed');
  });
});

describe('tool list size (limits.tools, limits.toolListBytes)', () => {
  it('4 M tools over 50 pages at the default limits, and 5,000 against limits.tools 1,000: the connector fails with the reason and the fix, lists nothing', async () => {
    const restart = (name: string) => (t.gw.gateway as unknown as { upstreams: Map<string, { restart(): Promise<void> }> }).upstreams.get(name)?.restart();
    await underAttack('millions', 0, async () => {
      await Promise.all([restart('millions'), restart('many')]);
      await until(() => status('millions')?.state === 'failed' && status('many')?.state === 'failed', 'both to fail');
    });
    expect(status('millions')?.reason).toMatch(/lists more than 2,000 tools, over its limit.*raise limits\.tools in the connector's registry entry/);
    expect(status('many')?.reason).toMatch(/lists more than 1,000 tools/);
    const names = await toolNames();
    expect(names.filter((n) => n.startsWith('millions__') || n.startsWith('many__'))).toEqual([]);
    expect(names).toContain('innocent__echo');
  });

  it('a 2 MB tool list against limits.toolListBytes 1 MiB: the connector fails, naming the limit', async () => {
    await until(() => status('fat')?.state === 'failed', 'fat to fail');
    expect(status('fat')?.reason).toContain('limits.toolListBytes');
    expect((await toolNames()).some((n) => n.startsWith('fat__'))).toBe(false);
  });

  it('a refresh over the limit keeps the previous list and logs why', async () => {
    expect(await toolNames()).toContain('growing__t9');
    const lists = async () => (await stats()).listsByTag.growing ?? 0;
    const lists0 = await lists();
    expect(text(await call('growing__grow', { tools: 100 }))).toBe('grew 100');
    await until(async () => (await lists()) > lists0, 'the re-list');
    const warning = await until(() => logLines.find((l) => l.connector === 'growing' && String(l.msg).includes('previous list is kept')), 'the warning');
    expect(String(warning.err)).toContain('raise limits.tools');
    expect(status('growing')?.state).toBe('ready');
    const names = await toolNames();
    expect(names).toContain('growing__t9');
    expect(names).not.toContain('growing__t10');
  });
});

describe('list_changed re-list rate (limits.relistsPerMinute)', () => {
  it('list_changed at 1,000/s for 3 s: at most one re-list a second (60/min), and the last change is read', async () => {
    let told = 0;
    alice.setNotificationHandler(ToolListChangedNotificationSchema, () => void told++);
    const listed = async () => (await stats()).listsByTag.stormy ?? 0;
    const lists0 = await listed();
    const r = await underAttack('stormy', 1, () => call('stormy__storm', { n: 3000, spanMs: 3000 }));
    expect(text(r)).toBe('stormed 3000');
    // The tool added before the last notification is listed: the last change was read.
    await until(async () => (await toolNames()).includes('stormy__after_storm'), 'stormy__after_storm', 10_000);
    const lists = (await listed()) - lists0;
    expect(lists).toBeGreaterThanOrEqual(1);
    expect(lists).toBeLessThanOrEqual(6);
    // Agents hear of a change once per re-list that changed something, not once per notification.
    expect(told).toBeLessThanOrEqual(lists);
  });
});

describe("a call's lifetime owns its resources", () => {
  it('100 calls that time out (100 ms): every upstream request is aborted and its stream closed; fds back to baseline', async () => {
    const closed0 = (await stats()).closedEarly;
    const results = await underAttack('hangfast', 100, async () => {
      const out: CallToolResult[] = [];
      for (let round = 0; round < 5; round++) out.push(...(await Promise.all(Array.from({ length: 20 }, () => call('hangfast__hang')))));
      return out;
    });
    for (const r of results) expect(text(r)).toBe('connector "hangfast" did not answer within 100 ms');
    await until(async () => (await stats()).open === 0, 'every hung stream closed by the gateway');
    expect((await stats()).closedEarly - closed0).toBeGreaterThanOrEqual(100);
  });

  it('a timed-out call whose stream was resumable (a priming event id): the SDK does not resume it after the call ended', async () => {
    const resumes0 = (await stats()).resumes;
    const r = await underAttack('hangs', 1, () => call('hangs__hang', { prime: true }));
    expect(text(r)).toBe('connector "hangs" did not answer within 400 ms');
    // The SDK's first reconnection attempt comes after 1 s (its initialReconnectionDelay).
    await new Promise((res) => setTimeout(res, 1_500));
    expect((await stats()).resumes).toBe(resumes0);
  });

  it('an agent that cancels its call: the upstream request is aborted and its stream closed', async () => {
    const closed0 = (await stats()).closedEarly;
    const agentSide = new AbortController();
    setTimeout(() => agentSide.abort(), 150);
    const r = await underAttack('hangs', 1, () => alice.callTool({ name: 'hangs__hang', arguments: {} }, undefined, { signal: agentSide.signal }).catch((e: unknown) => e));
    expect(r).toBeInstanceOf(Error);
    await until(async () => (await stats()).closedEarly > closed0 && (await stats()).open === 0, 'the cancelled call’s stream closed');
    await until(() => executedRecords(t, 'hangs').at(-1)?.outcome === 'cancelled', 'the cancelled outcome');
  });

  it("a timed-out call's stream: its late log message and sampling request reach nobody, not the one other call in flight", async () => {
    const bob = await t.client('bob', { capabilities: { sampling: {} } });
    const bobLogs: unknown[] = [];
    const bobSampling: unknown[] = [];
    bob.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void bobLogs.push(n.params.data));
    bob.setRequestHandler(CreateMessageRequestSchema, (req) => {
      bobSampling.push(req.params);
      return { role: 'assistant', content: { type: 'text', text: 'stolen' }, model: 'm' };
    });
    const closed0 = (await stats()).closedEarly;
    const samplingRecords0 = t.audit().filter((r) => String(r.event).startsWith('sampling')).length;
    const [a, b] = await underAttack('hangs', 2, () =>
      Promise.all([
        // Times out at 400 ms; its stream would talk at 800 ms.
        call('hangs__hang', { talkAfterMs: 800 }),
        // In flight until 1.5 s (progress keeps it within callMax): the only other call when the late messages come.
        bob.callTool({ name: 'hangs__slow', arguments: { ms: 1500, text: 'b', progressEveryMs: 100 } }, undefined, { onprogress: () => undefined }) as Promise<CallToolResult>,
      ]),
    );
    expect(text(a)).toBe('connector "hangs" did not answer within 400 ms');
    expect(text(b)).toBe('b');
    expect(bobLogs).toEqual(['log for b']);
    expect(bobSampling).toEqual([]);
    expect(t.audit().filter((r) => String(r.event).startsWith('sampling')).length).toBe(samplingRecords0);
    expect((await stats()).closedEarly - closed0).toBeGreaterThanOrEqual(1);
    await bob.close();
  });

  it('progress every 100 ms cannot keep a call going past timeouts.callMax (default: twice the 300 ms call timeout)', async () => {
    const closed0 = (await stats()).closedEarly;
    let progress = 0;
    const t0 = performance.now();
    const r = await underAttack('progress', 1, () =>
      alice.callTool({ name: 'progress__progress_forever', arguments: { everyMs: 100 } }, undefined, { onprogress: () => void progress++, timeout: 30_000 }) as Promise<CallToolResult>,
    );
    const elapsed = performance.now() - t0;
    expect(text(r)).toBe('connector "progress" did not finish within 600 ms (timeouts.callMax; progress notifications extend a call up to it, not further)');
    expect(progress).toBeGreaterThan(2);
    expect(elapsed).toBeGreaterThanOrEqual(590);
    expect(elapsed).toBeLessThan(3_000);
    await until(async () => (await stats()).closedEarly > closed0, 'the stream closed');
  });
});

describe('what an upstream answers is reported as what it is', () => {
  it('JSON-RPC -32000 "Connection closed" from an upstream is its error, not a closed connection; the connector is not restarted', async () => {
    const r = await call('capped__rpc_error', { code: -32000, message: 'Connection closed' });
    expect(r.isError).toBe(true);
    expect(text(r)).toBe('connector "capped" answered with an error: Connection closed');
    expect(status('capped')?.state).toBe('ready');
    expect(text(await call('capped__echo', { text: 'still here' }))).toBe('still here');
  });

  it.each(['+', '-'])('%s1e400 in a result is an error, not null', async (sign) => {
    const r = await call('capped__infinity', { sign });
    expect(r.isError).toBe(true);
    expect(text(r)).toBe(
      'connector "capped" answered with a number JSON cannot carry (±Infinity, e.g. 1e400) at result.structuredContent.value; the result is refused rather than passed on as null',
    );
    expect(executedRecords(t, 'capped').at(-1)).toMatchObject({ outcome: 'error', error: { code: 'UPSTREAM_PROTOCOL' } });
  });
});
