/**
 * The registry hot-reloads like policy (issue #12, item 18): a valid change
 * applies without dropping sessions, an invalid one keeps the old registry
 * and is audited, unchanged connectors keep running untouched.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ToolListChangedNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, startTestGateway, stdioFixture, until, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const start = (runtime: Parameters<typeof startTestGateway>[0]['runtime'] = {}) =>
  startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], runtime: { registryPollMs: 500, ...runtime } });

/** An SDK client that counts the list_changed notifications it receives. */
async function watchingClient(gw: TestGateway): Promise<{ client: Client; changes: () => number }> {
  const client = await gw.client('alice');
  let n = 0;
  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
    n++;
  });
  return { client, changes: () => n };
}

const names = async (c: Client) => (await c.listTools()).tools.map((x) => x.name);

/** The pid of the stdio child that served a call (the fixture logs it). */
async function pidOf(gw: TestGateway, c: Client, tool: string, text: string): Promise<number> {
  await c.callTool({ name: tool, arguments: { text } });
  const line = gw.calls().find((l) => (l.args as { text?: string } | undefined)?.text === text);
  return Number(line?.pid);
}

const reloads = (gw: TestGateway) => gw.audit().filter((r) => r.event === 'registry.reload');

describe('registry hot reload', () => {
  it("registry file edited while sessions are open: the new connector's tools appear, the session survives, list_changed is received", async () => {
    t = await start();
    const { client, changes } = await watchingClient(t);
    const sid = client.transport?.sessionId;
    const fxPid = await pidOf(t, client, 'fx__echo', 'before');
    expect(await names(client)).not.toContain('fy__echo');

    writeFileSync(join(t.dirs.registry, 'fy.yaml'), stringify(stdioFixture('fy', t.callLog)));
    await until(async () => (await names(client)).includes('fy__echo'), "fy's tools in the catalog");
    await until(() => changes() > 0, 'notifications/tools/list_changed');

    const r = (await client.callTool({ name: 'fy__echo', arguments: { text: 'new' } })) as CallToolResult;
    expect(r.content).toEqual([{ type: 'text', text: 'new' }]);
    // Same session, and the unchanged connector's process was not touched.
    expect(client.transport?.sessionId).toBe(sid);
    expect(t.gw.sessions.size).toBe(1);
    expect(await pidOf(t, client, 'fx__echo', 'after')).toBe(fxPid);

    await until(() => reloads(t as TestGateway).some((r) => r.ok === true && Array.isArray(r.added) && (r.added as string[]).includes('fy')), 'the registry.reload record');
    expect(reloads(t).at(-1)).toMatchObject({ ok: true, added: ['fy'], removed: [], changed: [] });
  });

  it('invalid registry edit: old registry stays, audited', async () => {
    t = await start();
    const { client } = await watchingClient(t);
    const before = await names(client);
    const fxPid = await pidOf(t, client, 'fx__echo', 'one');

    writeFileSync(join(t.dirs.registry, 'bad.yaml'), 'name: bad\nkind: stdio\ncomand: node\n');
    const rec = await until(() => reloads(t as TestGateway).find((r) => r.ok === false), 'the registry.reload ok:false record');
    expect(String(rec.error)).toMatch(/bad\.yaml:3:1: comand: unknown key/);

    // An invalid edit to a running connector's file keeps it running as it was.
    writeFileSync(join(t.dirs.registry, 'fx.yaml'), 'name: fx\nkind: stdio\ncommand: node\nargs: 3\n');
    await until(() => reloads(t as TestGateway).filter((r) => r.ok === false).length >= 2, 'a second registry.reload ok:false record');
    expect(await names(client)).toEqual(before);
    expect(await pidOf(t, client, 'fx__echo', 'two')).toBe(fxPid);
    expect(reloads(t).filter((r) => r.ok === true)).toHaveLength(1); // the start-up load only
  });

  it('connector removed: its tools vanish, calls to it are unknown tools', async () => {
    t = await start();
    writeFileSync(join(t.dirs.registry, 'fy.yaml'), stringify(stdioFixture('fy', t.callLog)));
    const { client, changes } = await watchingClient(t);
    await until(async () => (await names(client)).includes('fy__echo'), "fy's tools");
    const fyPid = await pidOf(t, client, 'fy__echo', 'fy-alive');
    const seen = changes();

    rmSync(join(t.dirs.registry, 'fy.yaml'));
    await until(async () => !(await names(client)).some((n) => n.startsWith('fy__')), "fy's tools to vanish");
    await until(() => changes() > seen, 'notifications/tools/list_changed');
    expect(await names(client)).toContain('fx__echo');

    // Exactly what a call to a tool that never existed gets.
    const callsBefore = t.calls().length;
    await expect(client.callTool({ name: 'fy__echo', arguments: { text: 'gone' } })).rejects.toThrow('MCP error -32602: Unknown tool: fy__echo');
    expect(t.calls().length).toBe(callsBefore);
    // Its process is stopped; the session is still the same one.
    await until(() => !isAlive(fyPid), "fy's process to exit");
    expect((await client.callTool({ name: 'fx__echo', arguments: { text: 'still here' } })).content).toEqual([{ type: 'text', text: 'still here' }]);
    await until(() => reloads(t as TestGateway).some((r) => Array.isArray(r.removed) && (r.removed as string[]).includes('fy')), 'the registry.reload record');
  });

  it('connector changed: it restarts with its new definition, the others keep running', async () => {
    t = await start();
    writeFileSync(join(t.dirs.registry, 'fy.yaml'), stringify(stdioFixture('fy', t.callLog)));
    const { client } = await watchingClient(t);
    await until(async () => (await names(client)).includes('fy__echo'), "fy's tools");
    const fxPid = await pidOf(t, client, 'fx__echo', 'fx-1');
    const fyPid = await pidOf(t, client, 'fy__echo', 'fy-1');

    // fy now hides echo.
    writeFileSync(join(t.dirs.registry, 'fy.yaml'), stringify(stdioFixture('fy', t.callLog, { tools: { allow: ['*'], deny: ['echo'] } })));
    await until(async () => {
      const n = await names(client);
      return n.includes('fy__add') && !n.includes('fy__echo');
    }, 'fy restarted with echo denied');
    await until(() => !isAlive(fyPid), "fy's old process to exit");
    expect(await pidOf(t, client, 'fx__echo', 'fx-2')).toBe(fxPid);
    await until(() => reloads(t as TestGateway).some((r) => Array.isArray(r.changed) && (r.changed as string[]).includes('fy')), 'the registry.reload record');
  });

  it('connector added with its own secret: it is bound to the new connector, reaches it, and is redacted from results', async () => {
    const values = new Map([['fz-token', 'sk-live-3f9a8b7c6d5e4f3a2b1c']]);
    const store = { description: 'memory', get: async (n: string) => values.get(n) ?? null, set: async () => undefined, delete: async () => false, list: async () => [...values.keys()] };
    t = await start({ secrets: store });
    const { client } = await watchingClient(t);
    writeFileSync(join(t.dirs.registry, 'fz.yaml'), stringify(stdioFixture('fz', t.callLog, {}, { FZ_TOKEN: '${secret:fz-token}' })));
    await until(async () => (await names(client)).includes('fz__env'), "fz's tools (it started with its secret)");
    const r = (await client.callTool({ name: 'fz__env', arguments: {} })) as CallToolResult;
    const text = JSON.stringify(r.content);
    expect(text).toContain('[REDACTED:fz-token]');
    expect(text).not.toContain('sk-live-3f9a8b7c6d5e4f3a2b1c');
  });

  it('the registry folder is replaced under the watch (renamed over): the change still applies', async () => {
    t = await start();
    const { client } = await watchingClient(t);
    const fresh = `${t.dirs.registry}.new`;
    mkdirSync(fresh);
    writeFileSync(join(fresh, 'fx.yaml'), stringify(stdioFixture('fx', t.callLog)));
    writeFileSync(join(fresh, 'fy.yaml'), stringify(stdioFixture('fy', t.callLog)));
    renameSync(t.dirs.registry, `${t.dirs.registry}.old`);
    renameSync(fresh, t.dirs.registry);
    await until(async () => (await names(client)).includes('fy__echo'), 'the replaced folder to be loaded');
    // And a later edit inside the new folder is seen too.
    rmSync(join(t.dirs.registry, 'fy.yaml'));
    await until(async () => !(await names(client)).includes('fy__echo'), 'an edit in the new folder to be seen');
  });
});
