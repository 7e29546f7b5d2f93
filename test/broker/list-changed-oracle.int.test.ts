/**
 * notifications/tools/list_changed must not be an oracle on hidden tools: an
 * agent is told only when its own list changed, never when a connector or tool
 * the policy hides from it came, changed or went.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';

const POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    { id: 'mallory-never-fy', match: { agent: 'mallory', tool: 'fy__*' }, effect: 'deny' },
    { id: 'all', match: { tool: '*' }, effect: 'allow' },
  ],
};

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function watching(gw: TestGateway, agent: string) {
  const client = await gw.client(agent);
  let n = 0;
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
    n++;
  });
  return { client, changes: () => n, names: async () => (await client.listTools()).tools.map((x) => x.name) };
}

describe('list_changed oracle', () => {
  it('a change to a tool hidden from the agent sends it no list_changed; a change to a visible one does', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY, runtime: { registryPollMs: 300 } });
    const mallory = await watching(t, 'mallory');
    const alice = await watching(t, 'alice');

    // A connector hidden from mallory comes up: alice is told, mallory is not.
    writeFileSync(join(t.dirs.registry, 'fy.yaml'), stringify(stdioFixture('fy', t.callLog)));
    await until(async () => (await alice.names()).includes('fy__echo'), "fy's tools for alice");
    await until(() => alice.changes() > 0, "alice's list_changed");
    // No sleep to wait for a non-event: a list_changed to mallory would go out with alice's, on her
    // own stream, before the one she gets for fz below (one stream, in order): it is counted there.
    expect((await mallory.names()).some((n) => n.startsWith('fy__'))).toBe(false);

    // It changes (restarts with a new definition: its tools go and come back): still nothing for mallory.
    const aliceBefore = alice.changes();
    writeFileSync(join(t.dirs.registry, 'fy.yaml'), stringify(stdioFixture('fy', t.callLog, { prefix: 'fy' }, { FIXTURE_EXTRA: '1' })));
    await until(() => t!.audit().filter((r) => r.event === 'registry.reload' && r.ok === true).length >= 3, 'the second reload');
    // The event: alice heard the tools go and come back, so mallory's would be out too.
    await until(async () => alice.changes() >= aliceBefore + 2 && (await alice.names()).includes('fy__echo'), "fy's tools back for alice");

    // A connector she can see comes up: she is told, once, and that is the only list_changed she ever got.
    writeFileSync(join(t.dirs.registry, 'fz.yaml'), stringify(stdioFixture('fz', t.callLog)));
    await until(() => mallory.changes() > 0, "mallory's list_changed");
    await until(async () => (await mallory.names()).includes('fz__echo'), "fz's tools for mallory");
    expect(mallory.changes()).toBe(1);
  });

  it('a policy reload that hides or shows a tool tells exactly the agents whose list changed', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const mallory = await watching(t, 'mallory');
    const alice = await watching(t, 'alice');
    expect(await mallory.names()).toContain('fx__echo');
    // New policy: echo hidden from mallory only.
    const next = { ...POLICY, rules: [{ id: 'mallory-no-echo', match: { agent: 'mallory', tool: 'fx__echo' }, effect: 'deny' }, ...POLICY.rules] };
    writeFileSync(join(t.dirs.policies, 'test.yaml'), stringify(next));
    await until(() => mallory.changes() > 0, "mallory's list_changed after the reload");
    expect(await mallory.names()).not.toContain('fx__echo');
    // No sleep for a non-event: a second reload hides echo from alice too. A list_changed she got
    // from the first reload would have come before this one on her stream: she has exactly one.
    const third = { ...next, rules: [{ id: 'alice-no-echo', match: { agent: 'alice', tool: 'fx__echo' }, effect: 'deny' }, ...next.rules] };
    writeFileSync(join(t.dirs.policies, 'test.yaml'), stringify(third));
    await until(() => alice.changes() > 0, "alice's list_changed after the second reload");
    expect(await alice.names()).not.toContain('fx__echo');
    expect(alice.changes()).toBe(1);
    expect(mallory.changes()).toBe(1);
  });
});
