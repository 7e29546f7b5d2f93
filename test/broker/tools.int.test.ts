/**
 * Listing and calling tools through the gateway, over a stdio upstream (spawned
 * by the gateway) and a Streamable HTTP upstream (spawned here), with the SDK Client.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { FIXTURE, readJsonLines, spawnHttpFixture, startTestGateway, stdioFixture, tempDir, type HttpFixture, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
let web: HttpFixture;
let direct: Client;
let webLog: string;

beforeAll(async () => {
  webLog = join(tempDir(), 'web-calls.jsonl');
  web = await spawnHttpFixture({ FIXTURE_CALL_LOG: webLog });
  t = await startTestGateway({
    connectors: (log) => [
      stdioFixture('fx', log, { tools: { allow: ['*'], deny: ['crash', 'env'] } }),
      { name: 'web', kind: 'http', url: web.url, tools: { allow: ['echo', 'add', 'mixed'] } },
    ],
  });
  direct = new Client({ name: 'direct', version: '1' });
  await direct.connect(new StdioClientTransport({ command: process.execPath, args: [FIXTURE, 'stdio'] }));
});

afterAll(async () => {
  await direct?.close();
  await t?.close();
  await web?.close();
});

async function rpcError(p: Promise<unknown>): Promise<McpError> {
  const e: unknown = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(McpError);
  return e as McpError;
}

const webCalls = () => readJsonLines(webLog);

describe('tools/list', () => {
  it('lists the namespaced, exposed tools of both upstreams in a stable sorted order', async () => {
    const c = await t.client('alice');
    const names = (await c.listTools()).tools.map((x) => x.name);
    expect(names).toEqual([
      'fx__add',
      'fx__add_tool',
      'fx__audio',
      'fx__echo',
      'fx__fail',
      'fx__image',
      'fx__mixed',
      'fx__resource',
      'fx__slow',
      'web__add',
      'web__echo',
      'web__mixed',
    ]);
    expect((await c.listTools()).tools.map((x) => x.name)).toEqual(names);
  });

  it('keeps the upstream schemas, annotations and outputSchema', async () => {
    const c = await t.client('alice');
    const add = (await c.listTools()).tools.find((x) => x.name === 'fx__add');
    expect(add?.inputSchema).toMatchObject({ type: 'object', required: ['a', 'b'] });
    expect(add?.outputSchema).toMatchObject({ properties: { sum: { type: 'number' } } });
    expect(add?.annotations).toEqual({ readOnlyHint: true });
  });

  it('hides a tool that policy denies to this agent in every case', async () => {
    const c = await t.client('mallory');
    const names = (await c.listTools()).tools.map((x) => x.name);
    expect(names).toContain('fx__add');
    expect(names).not.toContain('fx__env');
    // Denied only for some arguments: listed (the call is decided when it comes).
    expect(names).toContain('fx__echo');
  });
});

describe('tools/call', () => {
  it('calls a stdio upstream tool and returns its result', async () => {
    const c = await t.client('alice');
    const r = await c.callTool({ name: 'fx__echo', arguments: { text: 'hello stdio' } });
    expect(r).toEqual({ content: [{ type: 'text', text: 'hello stdio' }] });
  });

  it('calls an HTTP upstream tool and returns its result', async () => {
    const c = await t.client('alice');
    const r = await c.callTool({ name: 'web__add', arguments: { a: 2, b: 40 } });
    expect(r.structuredContent).toEqual({ sum: 42 });
    expect(webCalls().some((l) => l.tool === 'add' && (l.args as { a: number }).a === 2)).toBe(true);
  });

  it.each(['image', 'audio', 'resource', 'mixed', 'fail', 'add'])('passes a %s result through with full fidelity (equal to a direct call)', async (tool) => {
    const c = await t.client('alice');
    const args = tool === 'add' ? { a: 1.5, b: 2 } : {};
    const viaGateway = await c.callTool({ name: `fx__${tool}`, arguments: args });
    const directly = await direct.callTool({ name: tool, arguments: args });
    expect(viaGateway).toEqual(directly);
  });

  it('passes isError from the upstream through as a tool error, not a JSON-RPC error', async () => {
    const c = await t.client('alice');
    const r = (await c.callTool({ name: 'fx__fail', arguments: {} })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect(r.content).toEqual([{ type: 'text', text: 'the fixture failed on purpose' }]);
  });

  it('passes a mixed HTTP result through with full fidelity', async () => {
    const c = await t.client('alice');
    expect(await c.callTool({ name: 'web__mixed', arguments: {} })).toEqual(await direct.callTool({ name: 'mixed', arguments: {} }));
  });
});

describe('a tool that is not exposed does not exist for the agent', () => {
  it('unknown tool: -32602, never forwarded', async () => {
    const c = await t.client('alice');
    const before = t.calls().length;
    const e = await rpcError(c.callTool({ name: 'fx__does_not_exist', arguments: {} }));
    expect(e.code).toBe(-32602);
    expect(e.message).toBe('MCP error -32602: Unknown tool: fx__does_not_exist');
    expect(t.calls().length).toBe(before);
  });

  it('an upstream tool denied by the connector (tools.deny) is neither listed nor forwarded: -32602', async () => {
    const c = await t.client('alice');
    expect((await c.listTools()).tools.map((x) => x.name)).not.toContain('fx__crash');
    const e = await rpcError(c.callTool({ name: 'fx__crash', arguments: {} }));
    expect(e.code).toBe(-32602);
    expect(e.message).toContain('Unknown tool: fx__crash');
    expect(t.calls().filter((l) => l.tool === 'crash')).toEqual([]);
  });

  it('an HTTP upstream tool outside tools.allow is not forwarded: -32602', async () => {
    const c = await t.client('alice');
    const e = await rpcError(c.callTool({ name: 'web__fail', arguments: {} }));
    expect(e.code).toBe(-32602);
    expect(webCalls().filter((l) => l.tool === 'fail')).toEqual([]);
  });

  it('the upstream name without the namespace is unknown (no un-prefixed alias)', async () => {
    const c = await t.client('alice');
    const e = await rpcError(c.callTool({ name: 'echo', arguments: { text: 'x' } }));
    expect(e.code).toBe(-32602);
  });

  it('a case variant of an exposed name is unknown', async () => {
    const c = await t.client('alice');
    const before = t.calls().length;
    const e = await rpcError(c.callTool({ name: 'FX__ECHO', arguments: { text: 'x' } }));
    expect(e.code).toBe(-32602);
    expect(t.calls().length).toBe(before);
  });
});

describe('arguments are checked against the inputSchema before forwarding', () => {
  it.each([
    ['a missing required property', { a: 1 }, 'missing required property "b"'],
    ['a wrong type', { a: 1, b: 'two' }, 'arguments.b must be number'],
    ['an unknown property', { a: 1, b: 2, c: 3 }, 'unknown property "c"'],
  ])('%s: -32602 with the reason, never forwarded', async (_what, args, reason) => {
    const c = await t.client('alice');
    const before = t.calls().length;
    const e = await rpcError(c.callTool({ name: 'fx__add', arguments: args }));
    expect(e.code).toBe(-32602);
    expect(e.message).toContain('Invalid arguments for tool fx__add');
    expect(e.message).toContain(reason);
    expect(t.calls().length).toBe(before);
  });
});

describe('policy decides every call before it is forwarded', () => {
  it('a denied call is a tool error naming the rule, never forwarded', async () => {
    const c = await t.client('mallory');
    const before = t.calls().length;
    const r = (await c.callTool({ name: 'fx__echo', arguments: { text: 'let me out' } })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect(r.content[0]).toMatchObject({ type: 'text' });
    const text = (r.content[0] as { text: string }).text;
    expect(text).toContain('mallory may not echo');
    expect(text).toContain('rule "mallory-may-not-echo"');
    expect(r._meta).toEqual({ 'gatehouse/error': 'POLICY_DENIED' });
    expect(t.calls().length).toBe(before);
  });
});

describe('audit', () => {
  it('writes one tools/call record per call with agent, decision, rule and outcome', async () => {
    const seen = t.audit().length;
    const c = await t.client('auditor');
    await c.callTool({ name: 'fx__echo', arguments: { text: 'a' } });
    await c.callTool({ name: 'fx__fail', arguments: {} });
    await rpcError(c.callTool({ name: 'fx__nope', arguments: {} }));
    const m = await t.client('mallory');
    await m.callTool({ name: 'fx__echo', arguments: { text: 'b' } });

    const mine = t.audit().slice(seen).filter((r) => r.event === 'tools/call');
    expect(mine).toHaveLength(4);
    expect(mine[0]).toMatchObject({ agent: 'auditor', tool: 'fx__echo', connector: 'fx', upstreamTool: 'echo', decision: 'allow', rule: 'fixture-tools', outcome: 'ok' });
    expect(mine[1]).toMatchObject({ agent: 'auditor', tool: 'fx__fail', decision: 'allow', rule: 'fixture-tools', outcome: 'error' });
    expect(mine[2]).toMatchObject({ agent: 'auditor', tool: 'fx__nope', outcome: 'rejected', error: { code: 'TOOL_UNKNOWN' } });
    expect(mine[3]).toMatchObject({ agent: 'mallory', tool: 'fx__echo', decision: 'deny', rule: 'mallory-may-not-echo', outcome: 'denied' });
    for (const r of mine) expect(typeof r.session).toBe('string');
  });
});
