/**
 * Upstream behaviour through the gateway: crash and restart, per-call timeout,
 * progress, cancellation, tools/list_changed, the stdio child's environment,
 * and graceful shutdown.
 */
import { ToolListChangedNotificationSchema, type CallToolResult, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';

// Variables of the gateway's own environment that must not reach a stdio child.
const LEAKS = { GATEHOUSE_TEST_CANARY: 'canary-value', USER: 'gateway-user', LOGNAME: 'gateway-user', SHELL: '/bin/gateway-shell', TERM: 'gateway-term' };

let t: TestGateway;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  for (const [k, v] of Object.entries(LEAKS)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  t = await startTestGateway({
    connectors: (log) => [
      stdioFixture('fx', log, {}, { FIXTURE_EXTRA: 'from-registry' }),
      stdioFixture('crashy', log),
      stdioFixture('tight', log, { timeouts: { call: '300ms' } }),
    ],
  });
});

afterAll(async () => {
  await t?.close();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;
const status = (connector: string) => t.gw.gateway.report().find((r) => r.name === connector)?.status.state;

describe('upstream crash mid-call', () => {
  it('the call gets a clean tool error, the upstream is restarted and the next call works', async () => {
    const c = await t.client('alice');
    const firstPid = (await c.callTool({ name: 'crashy__env', arguments: {} }), t.calls().find((l) => l.tool === 'env')?.pid);
    expect(typeof firstPid).toBe('number');

    const r = (await c.callTool({ name: 'crashy__crash', arguments: {} })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect(text(r)).toBe('connector "crashy" closed the connection during the call (it will be restarted)');
    expect(r._meta).toEqual({ 'gatehouse/error': 'UPSTREAM_UNAVAILABLE' });
    expect(isAlive(firstPid as number)).toBe(false);

    await until(() => status('crashy') === 'ready' && t.gw.gateway.catalog.byName.has('crashy__echo'), 'crashy to be restarted');
    const again = await c.callTool({ name: 'crashy__echo', arguments: { text: 'back' } });
    expect(again).toEqual({ content: [{ type: 'text', text: 'back' }] });
    const pids = new Set(t.calls().filter((l) => l.tool === 'echo' && (l.args as { text?: string }).text === 'back').map((l) => l.pid));
    expect(pids.has(firstPid)).toBe(false);
  });

  it('the crash is audited as an error outcome', () => {
    const rec = t.audit().find((a) => a.event === 'tools/call' && a.tool === 'crashy__crash');
    expect(rec).toMatchObject({ decision: 'allow', outcome: 'error', error: { code: 'UPSTREAM_UNAVAILABLE' } });
  });
});

describe('per-call timeout', () => {
  it('a call slower than timeouts.call gets a tool error naming the timeout', async () => {
    const c = await t.client('alice');
    const r = (await c.callTool({ name: 'tight__slow', arguments: { ms: 20_000 } })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect(text(r)).toBe('connector "tight" did not answer within 300 ms');
    expect(r._meta).toEqual({ 'gatehouse/error': 'UPSTREAM_TIMEOUT' });
    // The gateway cancels the request upstream instead of leaving it running.
    await until(() => t.calls().some((l) => l.event === 'cancelled' && l.tool === 'slow'), 'the upstream to see the cancellation');
    const rec = t.audit().find((a) => a.event === 'tools/call' && a.tool === 'tight__slow');
    expect(rec).toMatchObject({ outcome: 'timeout', error: { code: 'UPSTREAM_TIMEOUT' } });
  });

  it('the upstream still answers fast calls after a timeout', async () => {
    const c = await t.client('alice');
    expect(await c.callTool({ name: 'tight__echo', arguments: { text: 'ok' } })).toEqual({ content: [{ type: 'text', text: 'ok' }] });
  });
});

describe('progress and cancellation', () => {
  it('progress notifications from the upstream are passed back to the agent', async () => {
    const c = await t.client('alice');
    const seen: Progress[] = [];
    const r = await c.callTool({ name: 'fx__slow', arguments: { ms: 400, steps: 4 } }, undefined, { onprogress: (p) => seen.push(p) });
    expect(text(r)).toBe('slept 400');
    // The SDK Client handles a progress notification a microtask later than a response read in
    // the same chunk, and drops it once the response is in. Under heavy load a notification can
    // land in the same chunk as the result at either hop, so only the order and a clear majority are asserted.
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen).toEqual([1, 2, 3, 4].slice(0, seen.length).map((i) => ({ progress: i, total: 4, message: `step ${i}` })));
  });

  it('no progress is sent when the agent did not ask for it', async () => {
    const c = await t.client('alice');
    const r = await c.callTool({ name: 'fx__slow', arguments: { ms: 40, steps: 2 } });
    expect(text(r)).toBe('slept 40');
  });

  it('a cancellation from the agent reaches the upstream', async () => {
    const c = await t.client('alice');
    const ac = new AbortController();
    const marker = 31_337 + Math.floor(Math.random() * 1000);
    const pending = c.callTool({ name: 'fx__slow', arguments: { ms: marker, steps: 1 } }, undefined, { signal: ac.signal });
    await until(() => t.calls().some((l) => l.tool === 'slow' && (l.args as { ms?: number } | undefined)?.ms === marker), 'the call to reach the upstream');
    const cancelledBefore = t.calls().filter((l) => l.event === 'cancelled').length;
    ac.abort('the user pressed stop');
    await expect(pending).rejects.toThrow();
    await until(() => t.calls().filter((l) => l.event === 'cancelled').length > cancelledBefore, 'the upstream to log the cancellation');
    const rec = await until(() => t.audit().find((a) => a.event === 'tools/call' && (a.args as { ms?: unknown } | undefined)?.ms !== undefined && a.outcome === 'cancelled'), 'the cancelled call to be audited');
    expect(rec).toMatchObject({ agent: 'alice', tool: 'fx__slow', outcome: 'cancelled' });
  });
});

describe('tools/list_changed', () => {
  it('an upstream adding a tool is followed and passed on to the session', async () => {
    const c = await t.client('alice');
    const changed = new Promise<void>((resolve) => c.setNotificationHandler(ToolListChangedNotificationSchema, async () => resolve()));
    expect((await c.listTools()).tools.map((x) => x.name)).not.toContain('fx__fresh');
    await c.callTool({ name: 'fx__add_tool', arguments: { name: 'fresh' } });
    await changed;
    await until(() => t.gw.gateway.catalog.byName.has('fx__fresh'), 'the catalog to include fx__fresh');
    expect((await c.listTools()).tools.map((x) => x.name)).toContain('fx__fresh');
    expect(await c.callTool({ name: 'fx__fresh', arguments: {} })).toEqual({ content: [{ type: 'text', text: 'called fresh' }] });
  });
});

describe('stdio child environment', () => {
  it('holds only PATH, HOME, LANG and the registry’s env, never the gateway’s own environment', async () => {
    const c = await t.client('alice');
    const env = JSON.parse(text(await c.callTool({ name: 'fx__env', arguments: {} }))) as Record<string, string>;
    expect(env.FIXTURE_EXTRA).toBe('from-registry');
    expect(env.PATH).toBe(process.env.PATH);
    expect(Object.keys(env).sort()).toEqual(['FIXTURE_CALL_LOG', 'FIXTURE_EXTRA', 'HOME', 'LANG', 'PATH']);
    expect(JSON.stringify(env)).not.toContain('canary-value');
  });
});

describe('graceful shutdown', () => {
  it('a call in flight completes when close() is called, and the stdio child is gone afterwards', async () => {
    const g = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)] });
    try {
      const c = await g.client('alice');
      const pending = c.callTool({ name: 'fx__slow', arguments: { ms: 600, steps: 2 } });
      const call = await until(() => g.calls().find((l) => l.tool === 'slow'), 'the slow call to reach the upstream');
      const pid = call.pid as number;
      expect(isAlive(pid)).toBe(true);
      const closing = g.gw.close(10_000);
      expect(text(await pending)).toBe('slept 600');
      await closing;
      expect(isAlive(pid)).toBe(false);
      expect(g.audit().some((a) => a.event === 'gateway.stop')).toBe(true);
    } finally {
      await g.close();
    }
  });
});

describe('a crashed upstream while it restarts', () => {
  it('keeps_its_tools_listed_and_calls_get_not_ready_with_the_retry_time_instead_of_unknown_tool', async () => {
    // A long backoff makes the restart window observable.
    const slow = await startTestGateway({ connectors: (log) => [stdioFixture('down', log)], runtime: { backoffMs: 5_000 } });
    try {
      const c = await slow.client('alice');
      await c.callTool({ name: 'down__crash', arguments: {} });
      await until(() => slow.gw.gateway.report()[0]?.status.state === 'failed', 'the upstream to be marked failed');
      expect((await c.listTools()).tools.map((x) => x.name)).toContain('down__echo');
      const r = (await c.callTool({ name: 'down__echo', arguments: { text: 'hi' } })) as CallToolResult;
      expect(r.isError).toBe(true);
      expect(r._meta).toEqual({ 'gatehouse/error': 'CONNECTOR_NOT_READY' });
      expect(text(r)).toMatch(/^connector "down" is not ready: .*retrying in \d+ ms$/);
      expect(slow.calls().filter((l) => l.tool === 'echo')).toEqual([]);
    } finally {
      await slow.close();
    }
  });
});
