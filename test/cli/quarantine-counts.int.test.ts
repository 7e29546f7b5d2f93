/**
 * `gatehouse status` and `gatehouse serve` show tools that wait for approval
 * (issue #16): an upstream that changes a pinned tool ("rug pull") must not
 * go unnoticed by the admin who reads either. The upstream is
 * test/fixtures/rug-pull.mjs; `status` is the real CLI, `serve`'s notices are
 * the hooks `serve` passes to startGateway, printed to a list.
 */
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterEach, describe, expect, it } from 'vitest';
import { serveNotices } from '../../src/cli/serve-notices.js';
import { fetchStatus, formatStatus, type GatewayStatus, type StatusConnector } from '../../src/cli/status.js';
import { runCli, type Ran } from '../helpers/cli.js';
import { ROOT, startTestGateway, stdioFixture, until, type ConnectorSpec, type TestGateway } from '../helpers/gateway.js';

const RUG_PULL = join(ROOT, 'test', 'fixtures', 'rug-pull.mjs');

/** Pinned (strict, the default); every mutation re-listed at once. */
const RP: ConnectorSpec = { name: 'rp', kind: 'stdio', command: 'node', args: [RUG_PULL], sandbox: 'off', pin: 'strict', limits: { relistsPerMinute: 6000 } };

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function gatewayWith(runtime: Parameters<typeof startTestGateway>[0]['runtime'] = {}): Promise<TestGateway> {
  // fx: unpinned (pin: off), so it never has a tool waiting.
  const g = await startTestGateway({ connectors: (log) => [RP, stdioFixture('fx', log)], runtime });
  t = g;
  await until(() => g.gw.gateway.catalog.byName.has('rp__mutate'), 'the rug-pull catalog');
  await until(() => g.gw.gateway.catalog.sorted.some((e) => e.connector === 'fx'), 'the fx catalog');
  return g;
}

async function mutate(c: Client, how: 'description' | 'schema' | 'shadow' | 'revert'): Promise<void> {
  const r = (await c.callTool({ name: 'rp__mutate', arguments: { how } })) as { isError?: boolean; content: Array<{ text: string }> };
  expect(r.content[0]?.text).toBe(`mutated: ${how}`);
}

function cli(g: TestGateway, ...args: string[]): Promise<Ran> {
  return runCli(args, { env: { HOME: g.root, GATEHOUSE_STATE: g.dirs.state } });
}

const counts = (s: Pick<GatewayStatus, 'connectors'>) => Object.fromEntries(s.connectors.map((r: StatusConnector) => [r.name, r.quarantined]));

/** Waits until the gateway's /status says rp has `n` tools quarantined. */
const quarantinedIs = (g: TestGateway, n: number) => until(async () => (await fetchStatus(g.dirs.state)).connectors.find((r) => r.name === 'rp')?.quarantined === n, `rp quarantined = ${n}`);

describe('status shows tools waiting for approval', () => {
  it('a_rug_pull_shows_in_status_as_one_quarantined_tool_with_the_command_that_lists_it_and_leaves_after_approval', async () => {
    const g = await gatewayWith();
    const alice = await g.client('alice');

    // Nothing waits: every connector says 0, and the text has no column and no hint.
    const calm = await fetchStatus(g.dirs.state);
    expect(calm.connectors.length).toBeGreaterThan(0);
    expect(counts(calm)).toEqual({ rp: 0, fx: 0 });
    const calmText = formatStatus(calm, 'gatehouse');
    expect(calmText).not.toContain('QUARANTINED');
    expect(calmText).not.toMatch(/wait(s)? for approval/);

    await mutate(alice, 'description');
    await quarantinedIs(g, 1);

    const text = await cli(g, 'status');
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toMatch(/^NAME +KIND +STATE +TOOLS +QUARANTINED +SANDBOX +WHY$/m);
    // rp serves mutate only: read_file is withheld.
    expect(text.stdout).toMatch(/^rp +stdio +ready +1 +1 +UNCONFINED/m);
    expect(text.stdout).toMatch(/^fx +stdio +ready +\d+ +UNCONFINED/m);
    expect(text.stdout).toMatch(/^1 tool waits for approval: .+ tools list --quarantined$/m);

    const json = await cli(g, 'status', '--json');
    expect(json).toMatchObject({ code: 0, stderr: '' });
    expect(counts(JSON.parse(json.stdout) as GatewayStatus)).toEqual({ rp: 1, fx: 0 });

    // Approved: nothing waits, the column and the hint go.
    expect(await cli(g, 'tools', 'approve', '--connector', 'rp')).toMatchObject({ code: 0 });
    await quarantinedIs(g, 0);
    const after = await cli(g, 'status');
    expect(after.stdout).not.toContain('QUARANTINED');
    expect(after.stdout).not.toMatch(/wait(s)? for approval/);
  });

  it('a_change_served_in_pin_mode_warn_is_not_counted_as_quarantined', async () => {
    const g = await startTestGateway({ connectors: () => [{ ...RP, pin: 'warn' }] });
    t = g;
    await until(() => g.gw.gateway.catalog.byName.has('rp__mutate'), 'the rug-pull catalog');
    const alice = await g.client('alice');
    await mutate(alice, 'description');
    await until(() => g.audit().some((r) => r.event === 'tool.changed' && r.tool === 'read_file'), 'the tool.changed record');
    expect(counts(await fetchStatus(g.dirs.state))).toEqual({ rp: 0 });
  });
});

describe('serve warns when a tool is quarantined', () => {
  it('a_rug_pull_warns_once_per_rise_of_the_quarantined_count_not_on_every_relist', async () => {
    const lines: string[] = [];
    const notices = serveNotices((l) => void lines.push(l), 'gatehouse', ' --state S');
    const g = await gatewayWith({ onUpstreamsStarting: notices.onUpstreamsStarting });
    const warned = () => lines.filter((l) => l.includes('quarantined'));
    try {
      const alice = await g.client('alice');
      expect(warned()).toEqual([]);

      await mutate(alice, 'description');
      await until(() => warned().length === 1, 'the first warning');
      expect(warned()).toEqual(['warning: connector "rp": 1 tool quarantined (changed since pinned): gatehouse tools list --quarantined --state S\n']);

      // read_file changes again: still one tool waiting, so no new line.
      await mutate(alice, 'schema');
      await until(() => g.audit().filter((r) => r.event === 'tool.quarantined' && r.tool === 'read_file').length === 2, 'the second tool.quarantined record');
      await quarantinedIs(g, 1);
      expect(warned()).toHaveLength(1);

      // A second tool: the count rises.
      await mutate(alice, 'shadow');
      await until(() => warned().length === 2, 'the second warning');
      expect(warned()[1]).toBe('warning: connector "rp": 2 tools quarantined (1 changed since pinned, 1 new): gatehouse tools list --quarantined --state S\n');

      // Approved (the count falls, quietly), then changed again: it rises from 0 and warns again.
      expect(await cli(g, 'tools', 'approve', '--connector', 'rp')).toMatchObject({ code: 0 });
      await quarantinedIs(g, 0);
      expect(warned()).toHaveLength(2);
      await mutate(alice, 'revert');
      await until(() => warned().length === 3, 'the third warning');
      expect(warned()[2]).toBe('warning: connector "rp": 1 tool quarantined (changed since pinned): gatehouse tools list --quarantined --state S\n');
      await new Promise((r) => setTimeout(r, 200));
      expect(warned()).toHaveLength(3);
      // The unpinned connector never warns.
      expect(lines.filter((l) => l.includes('"fx": '))).toEqual([]);
    } finally {
      notices.close();
    }
  });
});
