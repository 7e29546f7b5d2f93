/**
 * A connector can't take another's names (issue #24), through the real
 * gateway: a registered `prefix: ""` upstream starts listing
 * `gh__get_file_contents` while the real `gh` connector is not ready. An
 * agent calling that name is told gh is not ready, and the squatter never
 * receives the call.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ROOT, startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';

const NEVER_STARTS = join(ROOT, 'test', 'fixtures', 'slow-start.mjs');
let t: TestGateway;

beforeAll(async () => {
  t = await startTestGateway({
    connectors: (log) => [
      // Exposes the fixture's names as they are; its add_tool makes it list any name we like.
      stdioFixture('squatter', log, { prefix: '' }),
      { name: 'gh', kind: 'stdio', command: 'node', args: [NEVER_STARTS, 'stdio'], env: { FIXTURE_START_DELAY_MS: '99999999' }, timeouts: { connect: '1s' } },
    ],
    runtime: { upstreamWaitMs: 1_500 },
  });
  await until(() => t.gw.gateway.catalog.byName.has('add_tool'), 'the squatter to be ready', 20_000);
});

afterAll(async () => {
  await t?.close();
});

const problemsOf = (name: string) => t.gw.gateway.report().find((r) => r.name === name)?.problems ?? [];

describe('prefix "" lists gh__get_file_contents while gh is down', () => {
  it('the agent calling gh__get_file_contents is told gh is not ready; the squatter never receives the call', async () => {
    expect(t.gw.gateway.report().find((r) => r.name === 'gh')?.status.state).not.toBe('ready');
    const c = await t.client('alice');
    await c.callTool({ name: 'add_tool', arguments: { name: 'gh__get_file_contents' } });
    // A second, innocent name: once it is listed, the gateway has re-listed the squatter after both.
    await c.callTool({ name: 'add_tool', arguments: { name: 'marker' } });
    await until(() => t.gw.gateway.catalog.byName.has('marker'), 'the squatter to be re-listed');
    expect(problemsOf('squatter')).toEqual([
      {
        connector: 'squatter',
        tool: 'gh__get_file_contents',
        message: 'exposed name "gh__get_file_contents" is in the namespace of connector "gh" (prefix "gh"); a connector with prefix "" may not take it, the tool is not exposed',
      },
    ]);
    expect((await c.listTools()).tools.map((x) => x.name)).not.toContain('gh__get_file_contents');

    const e = await c.callTool({ name: 'gh__get_file_contents', arguments: { path: 'README.md' } }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(McpError);
    // The name is gh's: the agent is told gh is not ready (never the squatter's tool).
    expect((e as McpError).code).toBe(-32603);
    expect((e as McpError).data).toEqual({ code: 'CONNECTOR_NOT_READY' });
    expect((e as McpError).message).toMatch(/^MCP error -32603: connector "gh" is not ready: /);
    const forwarded = t.calls().map((l) => l.tool);
    expect(forwarded).toEqual(['add_tool', 'add_tool']);
  });
});

describe('the owner is registered after the squatter took its names', () => {
  it('a disabled connector added by a registry reload takes its names back at once', async () => {
    const c = await t.client('alice');
    await c.callTool({ name: 'add_tool', arguments: { name: 'off__read' } });
    await until(() => t.gw.gateway.catalog.byName.has('off__read'), 'off__read to be listed (no connector owns it yet)');

    writeFileSync(join(t.dirs.registry, 'off.yaml'), stringify({ name: 'off', kind: 'stdio', command: 'node', args: [NEVER_STARTS, 'stdio'], enabled: false }));
    await until(() => !t.gw.gateway.catalog.byName.has('off__read'), 'off__read to leave the catalog');
    expect(problemsOf('squatter').map((p) => p.tool)).toContain('off__read');
    expect(t.calls().map((l) => l.tool)).not.toContain('off__read');
  });
});
