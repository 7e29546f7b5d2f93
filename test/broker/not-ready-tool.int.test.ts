/**
 * A call of a tool whose connector is not ready (a missing secret) is told
 * so, with the reason and the fix, as README promises; not "Unknown tool".
 * The tool still stays out of tools/list, a policy that hides it from an
 * agent still makes it unknown to that agent, and no secret value is shown.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../connectors/helpers.js';
import { startTestGateway, stdioFixture, TEST_POLICY, until, type TestGateway } from '../helpers/gateway.js';

const POLICY = { ...TEST_POLICY, rules: [{ id: 'mallory-no-ghost', match: { agent: 'mallory', connector: 'ghost' }, effect: 'deny' }, ...TEST_POLICY.rules] };

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function failure(c: Client, name: string): Promise<{ code: number; message: string; data: unknown }> {
  try {
    await c.callTool({ name, arguments: { text: 'hi' } });
  } catch (e) {
    if (!(e instanceof McpError)) throw e;
    return { code: e.code, message: e.message, data: e.data };
  }
  throw new Error(`${name} did not fail`);
}

async function start(store: MemoryStore): Promise<TestGateway> {
  return startTestGateway({
    connectors: (log) => [stdioFixture('fx', log), stdioFixture('ghost', log, {}, { GHOST_TOKEN: '${secret:ghost-token}' })],
    policy: POLICY,
    runtime: { secrets: store, secretPollMs: 100, upstreamWaitMs: 20_000 },
  });
}

describe('a call to a not-ready connector’s tool', () => {
  it('a missing secret: a CONNECTOR_NOT_READY error naming the connector, the secret and `gatehouse secret set`; audited as refused; nothing forwarded', async () => {
    const store = new MemoryStore();
    t = await start(store);
    const coder = await t.client('coder');
    const listed = (await coder.listTools()).tools.map((x) => x.name);
    expect(listed).toContain('fx__echo');
    expect(listed.filter((n) => n.startsWith('ghost__'))).toEqual([]);

    const r = await failure(coder, 'ghost__echo');
    expect(r).toEqual({
      code: -32603,
      message: 'MCP error -32603: connector "ghost" is not ready: secret "ghost-token" (env GHOST_TOKEN of connector "ghost") is not set; run: gatehouse secret set ghost-token',
      data: { code: 'CONNECTOR_NOT_READY' },
    });
    expect(t.calls()).toEqual([]);
    const rec = t.audit().filter((l) => l.event === 'tools/call' && l.tool === 'ghost__echo');
    expect(rec).toHaveLength(1);
    expect(rec[0]).toMatchObject({ connector: 'ghost', outcome: 'rejected', error: { code: 'CONNECTOR_NOT_READY' } });

    // Setting the secret brings the connector up, and the same call goes through.
    await store.set('ghost-token', 'a-good-token-value');
    await until(() => t?.gw.gateway.report().find((c) => c.name === 'ghost')?.status.state === 'ready', 'ghost to become ready', 20_000);
    expect((await coder.callTool({ name: 'ghost__echo', arguments: { text: 'hi' } })).isError).toBeFalsy();
  });

  it('names outside a not-ready connector stay unknown: another connector’s missing tool, no connector at all', async () => {
    t = await start(new MemoryStore());
    const coder = await t.client('coder');
    for (const name of ['fx__nope', 'nobody__echo', 'ghost', 'ghostly__echo']) {
      expect(await failure(coder, name)).toEqual({ code: -32602, message: `MCP error -32602: Unknown tool: ${name}`, data: { code: 'TOOL_UNKNOWN' } });
    }
  });

  it('agent probes a not-ready connector the policy hides from it: Unknown tool, as for any hidden tool', async () => {
    t = await start(new MemoryStore());
    const mallory = await t.client('mallory');
    expect(await failure(mallory, 'ghost__echo')).toEqual({ code: -32602, message: 'MCP error -32602: Unknown tool: ghost__echo', data: { code: 'TOOL_UNKNOWN' } });
  });

  it('an unusable secret value (a NUL byte) makes the connector not ready; the error says why without the value', async () => {
    const value = 'leaky-SECRET-value-0123456789\0tail';
    t = await start(new MemoryStore({ 'ghost-token': value }));
    const coder = await t.client('coder');
    const r = await failure(coder, 'ghost__echo');
    expect(r.data).toEqual({ code: 'CONNECTOR_NOT_READY' });
    expect(r.message).toMatch(/^MCP error -32603: connector "ghost" is not ready: secret "ghost-token" .*gatehouse secret set ghost-token/);
    expect(r.message).not.toContain('leaky-SECRET');
    expect(JSON.stringify(t.audit())).not.toContain('leaky-SECRET');
  });
});
