/**
 * Upstream faults through the real gateway: a stdio child killed mid-call, an
 * HTTP upstream that refuses, hangs, answers garbage, cuts its stream,
 * resets, floods notifications; upstreams slow to start or never starting.
 * Each asserts what the agent sees and what the audit says, and that the
 * other connectors are not affected.
 */
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, readJsonLines, startTestGateway, stdioFixture, tempDir, until, type TestGateway } from '../helpers/gateway.js';
import { agentClient, errCode, FAULTY_HTTP, settledHeap, SLOW_START, spawnListening, text, verifyChain, within, type AgentClient, type Spawned } from './helpers.js';

let t: TestGateway;
let faulty: Spawned;
let doomed: Spawned;
let faultyLog: string;
let alice: AgentClient;
/** The late connector's state when start-up returned. */
let lateAtStart: string | undefined;

const CALL_TIMEOUT_MS = 1500;

beforeAll(async () => {
  faultyLog = join(tempDir('gh-faults-'), 'faulty-calls.jsonl');
  faulty = await spawnListening(FAULTY_HTTP, ['0'], { FIXTURE_CALL_LOG: faultyLog });
  doomed = await spawnListening(FAULTY_HTTP, ['0']);
  t = await startTestGateway({
    connectors: (log) => [
      stdioFixture('st', log),
      { name: 'bad', kind: 'http', url: faulty.url, timeouts: { call: `${CALL_TIMEOUT_MS}ms`, connect: '2s' } },
      { name: 'doomed', kind: 'http', url: doomed.url, timeouts: { call: '2s', connect: '1s' } },
      // The same misbehaving server, with room for a long call.
      { name: 'noisy', kind: 'http', url: faulty.url, timeouts: { call: '60s' }, tools: { allow: ['flood', 'list_storm', 'ok'] } },
      { name: 'late', kind: 'stdio', command: 'node', args: [SLOW_START, 'stdio'], env: { FIXTURE_START_DELAY_MS: '6000', FIXTURE_CALL_LOG: log } },
      { name: 'never', kind: 'stdio', command: 'node', args: [SLOW_START, 'stdio'], env: { FIXTURE_START_DELAY_MS: '99999999' }, timeouts: { connect: '1s' } },
    ],
    runtime: { upstreamWaitMs: 800, backoffMs: 150 },
  });
  lateAtStart = status('late')?.state;
  // The machine may be loaded: the ready connectors are those that came up, not those that came up in 800 ms.
  for (const c of ['st', 'bad', 'doomed', 'noisy']) await until(() => status(c)?.state === 'ready', `${c} to be ready`, 20_000);
  alice = await agentClient(t.url, await t.mint('alice'));
});

afterAll(async () => {
  await alice?.close();
  await t?.close();
  await faulty?.close();
  await doomed?.close();
});

const status = (name: string) => t.gw.gateway.report().find((r) => r.name === name)?.status as { state: string; retryInMs?: number } | undefined;
const lastCall = (tool: string) => t.audit().filter((a) => a.event === 'tools/call' && a.tool === tool).at(-1);
const call = (name: string, args: Record<string, unknown> = {}) => alice.client.callTool({ name, arguments: args }) as Promise<CallToolResult>;

describe('upstream slow to start, or never starting', () => {
  it('the gateway serves after upstreamWaitMs; tools/list answers at once with what is ready, and the late one joins when it is up', async () => {
    // No clock: start-up returned, and the first list was answered, while the late upstream
    // (6 s, against an 800 ms wait) was not yet up: nobody waited for it.
    expect(lateAtStart).not.toBe('ready');
    const first = (await within(alice.client.listTools(), 30_000, 'tools/list')).tools.map((x) => x.name);
    expect(status('late')?.state).not.toBe('ready');
    expect(first).toContain('st__echo');
    expect(first.some((n) => n.startsWith('late__'))).toBe(false);
    expect(first.some((n) => n.startsWith('never__'))).toBe(false);
    expect(text(await call('st__echo', { text: 'unaffected' }))).toBe('unaffected');

    const changed = new Promise<void>((r) => alice.client.setNotificationHandler(ToolListChangedNotificationSchema, () => r()));
    await until(() => status('late')?.state === 'ready', 'the late connector', 15_000);
    await changed;
    const later = (await alice.client.listTools()).tools.map((x) => x.name);
    expect(later).toContain('late__echo');
    expect(text(await call('late__echo', { text: 'late but here' }))).toBe('late but here');
  });

  it('a connector that never speaks MCP fails its connect timeout and is retried with backoff; nobody waits for it', async () => {
    await until(() => status('never')?.state === 'failed', 'the never connector to fail');
    expect(status('never')).toMatchObject({ state: 'failed', reason: expect.stringMatching(/timed out|timeout/i) });
    // Waiting for it would be forever: the guard only stops a hang.
    await within(alice.client.listTools(), 30_000, 'tools/list');
    expect(text(await within(call('st__echo', { text: 'still fast' }), 30_000, 'a call to st'))).toBe('still fast');
    const r = await alice.client.callTool({ name: 'never__echo', arguments: { text: 'x' } }).catch((e: unknown) => e);
    // Its tools were never listed, but the name is its own: the agent is told why it can't be called.
    // (Failed, or between two attempts: starting again.)
    expect(String((r as Error).message)).toMatch(/connector "never" is not ready: (it failed \(.*(timed out|timeout).*\); retrying in \d+ s|it is starting; try again shortly)$/i);
  });
});

describe('stdio upstream killed mid-call', () => {
  it('every call in flight gets a clean tool error, each audited; the child is restarted with growing backoff; the next call works', async () => {
    const before = t.calls().filter((l) => l.tool === 'slow').length;
    const inFlight = Array.from({ length: 4 }, (_, i) => call('st__slow', { ms: 20_000 + i }));
    const pid = await until(() => {
      const slow = t.calls().filter((l) => l.tool === 'slow');
      return slow.length >= before + 4 && (slow.at(-1)?.pid as number);
    }, 'the calls to reach the child');
    process.kill(pid, 'SIGKILL');
    const results = await Promise.all(inFlight);
    for (const r of results) {
      expect(r.isError).toBe(true);
      expect(errCode(r)).toBe('UPSTREAM_UNAVAILABLE');
      expect(text(r)).toBe('connector "st" closed the connection during the call (it will be restarted)');
    }
    const audited = t.audit().filter((a) => a.event === 'tools/call' && a.tool === 'st__slow').slice(-4);
    expect(audited.map((a) => (a.args as { ms: number }).ms).sort()).toEqual([20_000, 20_001, 20_002, 20_003]);
    for (const a of audited) expect(a).toMatchObject({ outcome: 'error', decision: 'allow', error: { code: 'UPSTREAM_UNAVAILABLE' } });

    // Backoff: restarted after 150 ms; killed again at once, the next wait doubles.
    expect(status('st')).toMatchObject({ state: 'failed', retryInMs: 150 });
    await until(() => status('st')?.state === 'ready', 'the restart');
    const second = await until(() => {
      const r = t.gw.gateway.report().find((x) => x.name === 'st');
      return r?.status.state === 'ready' && r;
    }, 'ready');
    expect(second).toBeTruthy();
    const r2 = await call('st__echo', { text: 'pid?' });
    expect(text(r2)).toBe('pid?');
    const pid2 = t.calls().filter((l) => l.tool === 'echo').at(-1)?.pid as number;
    expect(pid2).not.toBe(pid);
    expect(isAlive(pid)).toBe(false);
    process.kill(pid2, 'SIGKILL');
    await until(() => status('st')?.state === 'failed', 'the second failure');
    expect(status('st')).toMatchObject({ retryInMs: 300 });
    await until(() => status('st')?.state === 'ready', 'the second restart');
    expect(text(await call('st__echo', { text: 'back again' }))).toBe('back again');
  });
});

describe('HTTP upstream faults', () => {
  const cases: Array<{ tool: string; code: RegExp; outcome: string; saysWhy: RegExp }> = [
    { tool: 'hang', code: /^UPSTREAM_TIMEOUT$/, outcome: 'timeout', saysWhy: /did not answer within 1500 ms/ },
    { tool: 'garbage', code: /^UPSTREAM_(PROTOCOL|ERROR)$/, outcome: 'error', saysWhy: /^connector "bad" / },
    { tool: 'garbage_sse', code: /^UPSTREAM_(PROTOCOL|ERROR|TIMEOUT|UNAVAILABLE)$/, outcome: '(error|timeout)', saysWhy: /^(connector|call to connector) "bad" / },
    { tool: 'halfway', code: /^UPSTREAM_(PROTOCOL|ERROR|TIMEOUT|UNAVAILABLE)$/, outcome: '(error|timeout)', saysWhy: /^connector "bad" / },
    { tool: 'reset', code: /^UPSTREAM_(UNAVAILABLE|PROTOCOL)$/, outcome: 'error', saysWhy: /^connector "bad" / },
    { tool: 'wrong_id', code: /^UPSTREAM_(TIMEOUT|PROTOCOL)$/, outcome: '(timeout|error)', saysWhy: /^connector "bad" / },
    { tool: 'status_500', code: /^UPSTREAM_(PROTOCOL|ERROR|UNAVAILABLE)$/, outcome: 'error', saysWhy: /^connector "bad" / },
  ];
  it('the list of faults is not empty', () => expect(cases.length).toBeGreaterThan(5));

  for (const c of cases) {
    it(`${c.tool}: a clean tool error within the call timeout, audited; the upstream still works for the next call`, async () => {
      // The gateway's own call timeout ends it (the SDK client's is 60 s): the guard only stops a hang.
      const r = await within(call(`bad__${c.tool}`), 30_000, `bad__${c.tool}`);
      expect(r.isError, JSON.stringify(r)).toBe(true);
      expect(String(errCode(r))).toMatch(c.code);
      expect(text(r)).toMatch(c.saysWhy);
      expect(lastCall(`bad__${c.tool}`)).toMatchObject({ outcome: expect.stringMatching(new RegExp(`^${c.outcome}$`)), error: { code: errCode(r) } });
      const ok = await until(async () => {
        const x = await call('bad__ok', { n: 1 });
        return x.isError ? undefined : x;
      }, 'bad to answer again');
      expect(text(ok)).toBe('ok 1');
    });
  }

  it('refusing connections (the server is gone): a tool error naming ECONNREFUSED, audited; other connectors unaffected', async () => {
    expect(text(await call('doomed__ok', { n: 2 }))).toBe('ok 2');
    await doomed.close();
    const r = await call('doomed__ok', { n: 3 });
    expect(r.isError).toBe(true);
    expect(errCode(r)).toBe('UPSTREAM_UNAVAILABLE');
    expect(text(r)).toMatch(/connector "doomed" is unreachable \(ECONNREFUSED\)/);
    expect(lastCall('doomed__ok')).toMatchObject({ outcome: 'error', error: { code: 'UPSTREAM_UNAVAILABLE' } });
    expect(text(await call('st__echo', { text: 'fine' }))).toBe('fine');
  });

  it('a flood of 20,000 log and progress notifications in one call: the call completes, other sessions stay responsive, memory stays bounded', async () => {
    const bob = await agentClient(t.url, await t.mint('bob'));
    try {
      const heap0 = await settledHeap();
      let progress = 0;
      let done = false;
      const flood = alice.client
        .callTool({ name: 'noisy__flood', arguments: { n: 20_000 } }, undefined, { onprogress: () => void progress++, timeout: 120_000, resetTimeoutOnProgress: true })
        .finally(() => (done = true));
      const lat: number[] = [];
      while (!done) {
        const t0 = performance.now();
        expect(text(await bob.client.callTool({ name: 'st__echo', arguments: { text: 'meanwhile' } }))).toBe('meanwhile');
        lat.push(performance.now() - t0);
      }
      const r = (await flood) as CallToolResult;
      expect(text(r)).toBe('flooded 20000');
      expect(progress).toBeGreaterThan(0);
      expect(progress).toBeLessThanOrEqual(20_000);
      // Responsive, not starved: bob's calls kept completing while the flood was in progress
      // (a starved gateway answers bob only after the flood). No speed is asserted.
      expect(lat.length).toBeGreaterThanOrEqual(2);
      expect(lastCall('noisy__flood')).toMatchObject({ outcome: 'ok' });
      expect((await settledHeap()) - heap0).toBeLessThan(32 * 2 ** 20);
    } finally {
      await bob.close();
    }
  });

  it('a storm of 2,000 tools/list_changed notifications does not make the gateway re-list 2,000 times', async () => {
    const stats = async () => (await (await fetch(`http://127.0.0.1:${faulty.port}/stats`)).json()) as { toolsList: number };
    const before = (await stats()).toolsList;
    const r = await call('noisy__list_storm', { n: 2000 });
    expect(text(r)).toBe('stormed 2000');
    // Every notification came before the result, so every re-list was already asked for; one was made.
    await until(async () => (await stats()).toolsList > before, 'the gateway to re-list');
    // A later call served through the same upstream: re-lists asked for before it have reached the server.
    expect(text(await call('bad__ok', { n: 4 }))).toBe('ok 4');
    const lists = (await stats()).toolsList - before;
    expect(lists).toBeLessThanOrEqual(5);
  });

  it('after every fault the audit chain verifies and nothing was forwarded twice', async () => {
    const calls = readJsonLines(faultyLog).filter((l) => l.tool === 'ok');
    const keys = calls.map((l) => JSON.stringify(l.args));
    expect(new Set(keys.filter((k) => k !== '{"n":1}')).size).toBe(keys.filter((k) => k !== '{"n":1}').length);
    const report = await verifyChain(t.dirs.state);
    expect(report.problems).toEqual([]);
  });
});
