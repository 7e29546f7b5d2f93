/**
 * The policy file replaced with garbage while agents are calling: every
 * reload is rejected and audited, the old policy stays in force for every
 * call (allowed stay allowed, denied stay denied), and no agent sees an error.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';
import { agentClient, errCode, text, verifyChain, type AgentClient } from './helpers.js';

const POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    // Conditional, so add stays listed (denied in every case would make it an unknown tool).
    { id: 'no-add', match: { tool: '*__add', args: { a: { min: -1e15 } } }, effect: 'deny' },
    { id: 'add-listed', match: { tool: '*__add' }, effect: 'allow' },
    { id: 'echo-ok', match: { tool: '*__echo' }, effect: 'allow' },
  ],
};

let t: TestGateway;
let clients: AgentClient[] = [];

beforeAll(async () => {
  t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
  clients = await Promise.all(Array.from({ length: 6 }, async (_, i) => agentClient(t.url, await t.mint(`p${i}`))));
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await t?.close();
});

const GARBAGE: Array<[string, string | Buffer]> = [
  ['random bytes', Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7919) % 256))],
  ['truncated YAML', stringify(POLICY).slice(0, 60)],
  ['wrong types', 'version: 1\ndefault: deny\nrules: 5\n'],
  ['empty file', ''],
  ['a misspelt key', stringify({ ...POLICY, rules: [{ id: 'x', match: { tool: '*' }, efect: 'allow' }] })],
  ['an alias bomb', `a: &a ["x","x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n`],
  ['allow-everything in a broken file', 'version: 1\ndefault: allow\nrules: [\n'],
  ['NUL bytes', 'version: 1\u0000\ndefault: allow\n'],
];

describe('policy file replaced with garbage mid-load', () => {
  it('each replacement is rejected and audited; the old policy decides every call; no agent sees an error', { timeout: 90_000 }, async () => {
    const file = join(t.dirs.policies, 'test.yaml');
    let stop = false;
    let calls = 0;
    const problems: string[] = [];
    const load = clients.map(async (c, ci) => {
      for (let i = 0; !stop; i++) {
        calls++;
        try {
          if (i % 3 === 2) {
            const r = await c.client.callTool({ name: 'fx__add', arguments: { a: ci, b: i } });
            if (errCode(r) !== 'POLICY_DENIED') problems.push(`add allowed or failed: ${JSON.stringify(r)}`);
          } else {
            const r = await c.client.callTool({ name: 'fx__echo', arguments: { text: `${ci}-${i}` } });
            if (text(r) !== `${ci}-${i}`) problems.push(`echo: ${JSON.stringify(r)}`);
          }
        } catch (e) {
          problems.push(`transport: ${String(e)}`);
        }
      }
    });

    const rejected = () => t.audit().filter((a) => a.event === 'policy.reload' && a.ok === false).length;
    try {
      for (const [what, content] of GARBAGE) {
        const before = rejected();
        // Half in place (an editor saving), half by rename (a deploy tool).
        if (what.length % 2 === 0) writeFileSync(file, content);
        else {
          writeFileSync(`${file}.tmp`, content);
          renameSync(`${file}.tmp`, file);
        }
        await until(() => rejected() > before, `the ${what} reload to be rejected`);
      }
    } finally {
      stop = true;
      await Promise.all(load);
    }

    expect(problems.slice(0, 5)).toEqual([]);
    expect(calls).toBeGreaterThan(GARBAGE.length * 6);
    const reloads = t.audit().filter((a) => a.event === 'policy.reload');
    expect(reloads.every((r) => r.ok === false)).toBe(true);
    expect(reloads.length).toBeGreaterThanOrEqual(GARBAGE.length);
    for (const r of reloads) expect(String(r.error)).toMatch(/test\.yaml|polic/i);
    expect(t.gw.policies.current().rules.map((r) => r.id)).toEqual(['no-add', 'add-listed', 'echo-ok']);

    // A valid policy still takes effect afterwards (the watcher survived the garbage).
    writeFileSync(file, stringify({ ...POLICY, rules: [{ id: 'all-ok', match: { tool: '*' }, effect: 'allow' }] }));
    await until(() => t.audit().some((a) => a.event === 'policy.reload' && a.ok === true), 'the valid reload');
    const r = await clients[0]?.client.callTool({ name: 'fx__add', arguments: { a: 1, b: 2 } });
    expect(text(r)).toBe('{"sum":3}');
    expect((await verifyChain(t.dirs.state)).problems).toEqual([]);
  });
});
