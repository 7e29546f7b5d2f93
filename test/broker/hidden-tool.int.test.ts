/**
 * A tool the policy hides from an agent looks exactly like a tool that does
 * not exist (issue #12, item 11). Arguments were checked before policy, so a
 * schema error confirmed the hidden tool and told the agent what it takes.
 */
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, stdioFixture, type TestGateway } from '../helpers/gateway.js';

const POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    { id: 'add-for-reviewers', match: { tool: 'fx__add', agent: 'reviewer' }, effect: 'allow' },
    { id: 'echo-ok', match: { tool: 'fx__echo' }, effect: 'allow' },
  ],
};

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** What the agent learns from a failed call: the JSON-RPC error, with the tool name taken out. */
async function failure(c: Client, name: string, args: Record<string, unknown>): Promise<{ code: number; message: string; data: unknown }> {
  try {
    await c.callTool({ name, arguments: args });
  } catch (e) {
    if (!(e instanceof McpError)) throw e;
    return { code: e.code, message: e.message.split(name).join('<NAME>'), data: e.data };
  }
  throw new Error(`${name} did not fail`);
}

describe('a tool hidden by policy is indistinguishable from an unknown tool', () => {
  it('agent probes a hidden tool with valid and with malformed arguments: the same error as a tool that does not exist, nothing forwarded', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const coder = await t.client('coder');
    expect((await coder.listTools()).tools.map((x) => x.name)).not.toContain('fx__add');

    const absent = await failure(coder, 'fx__nope', { a: 1, b: 2 });
    const hiddenValid = await failure(coder, 'fx__add', { a: 1, b: 2 });
    const hiddenMalformed = await failure(coder, 'fx__add', { a: 'not a number' });
    const hiddenNoArgs = await failure(coder, 'fx__add', {});
    expect(absent).toEqual({ code: -32602, message: 'MCP error -32602: Unknown tool: <NAME>', data: { code: 'TOOL_UNKNOWN' } });
    expect(hiddenValid).toEqual(absent);
    expect(hiddenMalformed).toEqual(absent);
    expect(hiddenNoArgs).toEqual(absent);
    expect(t.calls().filter((l) => l.tool === 'add')).toEqual([]);

    // The admin sees why.
    const rejected = t.audit().filter((l) => l.event === 'tools/call' && l.tool === 'fx__add');
    expect(rejected).toHaveLength(3);
    for (const r of rejected) expect(r).toMatchObject({ outcome: 'rejected', hiddenByPolicy: true, error: { code: 'TOOL_UNKNOWN' } });
  });

  it('control: for an agent the tool is visible to, malformed arguments are an argument error', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const reviewer = await t.client('reviewer');
    const e = await failure(reviewer, 'fx__add', { a: 'not a number' });
    expect(e.data).toEqual({ code: 'ARGS_INVALID' });
    expect(((await reviewer.callTool({ name: 'fx__add', arguments: { a: 1, b: 2 } })) as { isError?: boolean }).isError).toBeFalsy();
  });
});
