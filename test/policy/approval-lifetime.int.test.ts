/**
 * A pending approval never outlives its caller, and approvals and grants
 * survive a gateway restart. Real gateway, real MCP SDK clients (in this
 * process and in a child process that is SIGKILLed), real `gatehouse serve`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { adminRequest } from '../../src/server/control-client.js';
import { silentLogger } from '../../src/log.js';
import type { Grant, PendingApproval, WithdrawnApproval } from '../../src/policy/approvals.js';
import { startGateway, type RunningGateway } from '../../src/app/gateway.js';
import { loadTokenKeys, mintToken } from '../../src/server/tokens.js';
import { startServe, type Serving } from '../helpers/cli.js';
import { CLI, MCP_HEADERS, ROOT, readJsonLines, startTestGateway, stdioFixture, tempDir, until, writeConfig, type TestGateway } from '../helpers/gateway.js';

const run = promisify(execFile);

const POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    { id: 'echo-asks', match: { tool: 'fx__echo' }, effect: 'ask', ask: { timeout: '2m', grant: { ttl: '1h', maxUses: 5 } } },
    { id: 'add-asks', match: { tool: 'fx__add' }, effect: 'ask', ask: { timeout: '2m' } },
  ],
};

let t: TestGateway | undefined;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  await t?.close();
  t = undefined;
  for (const c of cleanups.splice(0).reverse()) await c();
});

type ApprovalsView = { pending: PendingApproval[]; grants: Grant[]; withdrawn: WithdrawnApproval[] };
const view = (state: string) => adminRequest(state, 'GET', '/approvals') as Promise<ApprovalsView>;

async function onePending(state: string): Promise<PendingApproval> {
  return until(async () => (await view(state)).pending[0], 'a pending approval');
}

/** The approval is withdrawn (audited, listed) and approving it now fails and forwards nothing. */
async function expectWithdrawnForGood(tg: TestGateway, id: string, reason: RegExp) {
  const state = tg.dirs.state;
  const audit = () => tg.audit();
  const calls = () => tg.calls();
  const rec = await until(() => audit().find((r) => r.event === 'approval.withdrawn' && r.approvalId === id), 'the withdrawal in the audit log');
  expect(String(rec.reason)).toMatch(reason);
  const v = await view(state);
  expect(v.pending).toEqual([]);
  expect(v.withdrawn.map((w) => w.id)).toContain(id);
  await expect(adminRequest(state, 'POST', `/approvals/${id}/approve`, { by: 'alice' })).rejects.toThrow(/was withdrawn/);
  await expect(adminRequest(state, 'POST', `/approvals/${id}/approve`, { by: 'alice', grant: { ttl: '1h', uses: 5 } })).rejects.toThrow(/was withdrawn/);
  // The event, not a pause: a later call, approved after those attempts, reaches the same upstream
  // (one stdio pipe, in order). A wrongly approved call would have been forwarded before it.
  const witness = await tg.client('witness');
  const done = witness.callTool({ name: 'fx__add', arguments: { a: 2, b: 3 } });
  const wp = await until(async () => (await view(state)).pending.find((x) => x.agent === 'witness'), "the witness's approval");
  await adminRequest(state, 'POST', `/approvals/${wp.id}/approve`, { by: 'alice' });
  expect(((await done) as CallToolResult).isError).toBeFalsy();
  await until(() => calls().some((l) => l.event === 'call' && l.tool === 'add'), 'the witness call to reach the upstream');
  expect(calls().filter((l) => l.event === 'call' && l.tool === 'echo')).toEqual([]);
}

describe('an approval does not outlive its caller', () => {
  it('caller disconnects while waiting for approval: the approval is withdrawn and approving it later forwards nothing', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('coder');
    const result = c.callTool({ name: 'fx__echo', arguments: { text: 'ship it' } }).catch((e: unknown) => e);
    const p = await onePending(t.dirs.state);
    // Client.close() drops the connections: no notifications/cancelled, no DELETE.
    await c.close();
    await result;
    const tg = t;
    await expectWithdrawnForGood(tg, p.id, /the client disconnected/);
    expect(tg.audit().find((r) => r.event === 'tools/call' && r.approvalId === p.id)).toMatchObject({ decision: 'ask', outcome: 'denied' });
  });

  it('caller hangs up a raw HTTP request mid-wait: the approval is withdrawn', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const token = await t.mint('coder');
    const sid = await t.openSession(token);
    const body = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'fx__echo', arguments: { text: 'raw' } } });
    const req = httpRequest({
      host: '127.0.0.1',
      port: t.port,
      method: 'POST',
      path: '/mcp',
      headers: { ...MCP_HEADERS, host: `127.0.0.1:${t.port}`, authorization: `Bearer ${token}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
    });
    req.on('error', () => undefined);
    req.end(body);
    const p = await onePending(t.dirs.state);
    req.destroy();
    const tg = t;
    await expectWithdrawnForGood(tg, p.id, /the client disconnected/);
  });

  it('session DELETEd while a call waits for approval: the approval is withdrawn and approving it later forwards nothing', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const token = await t.mint('coder');
    const sid = await t.openSession(token);
    const headers = { ...MCP_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    const waiting = t.raw({ token, headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'fx__echo', arguments: { text: 'x' } } }) });
    const p = await onePending(t.dirs.state);
    const del = await t.raw({ token, method: 'DELETE', headers });
    expect(del.status).toBe(200);
    await waiting.catch(() => undefined);
    const tg = t;
    await expectWithdrawnForGood(tg, p.id, /the caller is gone/);
  });

  it('client process SIGKILLed while a call waits for approval: the approval is withdrawn and approving it later forwards nothing', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const dir = tempDir('gh-kill-client-');
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const script = join(dir, 'agent.mjs');
    const sdk = (p: string) => pathToFileURL(join(ROOT, 'node_modules', '@modelcontextprotocol', 'sdk', 'dist', 'esm', p)).href;
    writeFileSync(
      script,
      `import { Client } from ${JSON.stringify(sdk('client/index.js'))};
import { StreamableHTTPClientTransport } from ${JSON.stringify(sdk('client/streamableHttp.js'))};
const transport = new StreamableHTTPClientTransport(new URL(process.argv[2]), { requestInit: { headers: { authorization: 'Bearer ' + process.argv[3] } } });
const client = new Client({ name: 'doomed-agent', version: '1' }, { capabilities: {} });
await client.connect(transport);
console.log('CALLING');
await client.callTool({ name: 'fx__echo', arguments: { text: 'from the grave' } }, undefined, { timeout: 600000 });
console.log('RETURNED');
`,
    );
    const child = spawn(process.execPath, [script, t.url, await t.mint('coder')], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(() => void child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => out.includes('CALLING'), 'the child agent to call');
    const p = await onePending(t.dirs.state);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const tg = t;
    await expectWithdrawnForGood(tg, p.id, /the client disconnected/);
    expect(out).not.toContain('RETURNED');
  });

  it('a caller that stays connected is still served: approve after a wait lets the call through', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], policy: POLICY });
    const c = await t.client('coder');
    const result = c.callTool({ name: 'fx__echo', arguments: { text: 'patience' } });
    const p = await onePending(t.dirs.state);
    await new Promise((r) => setTimeout(r, 300));
    await adminRequest(t.dirs.state, 'POST', `/approvals/${p.id}/approve`, { by: 'alice' });
    expect(((await result) as CallToolResult).isError).toBeFalsy();
    expect(t.calls().filter((l) => l.event === 'call' && l.tool === 'echo')).toHaveLength(1);
    expect(t.audit().some((r) => r.event === 'approval.withdrawn')).toBe(false);
  });
});

describe('approvals and grants survive a restart', () => {
  async function agent(url: string, token: string): Promise<Client> {
    const client = new Client({ name: 'gatehouse-test', version: '1.0.0' }, { capabilities: {} });
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    cleanups.push(() => client.close().catch(() => undefined));
    return client;
  }

  function config() {
    const root = tempDir('gh-restart-');
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const callLog = join(root, 'calls.jsonl');
    const dirs = writeConfig(root, [stdioFixture('fx', callLog)], POLICY);
    return { root, dirs, callLog, audit: () => readJsonLines(join(dirs.state, 'audit', 'audit.jsonl')), calls: () => readJsonLines(callLog) };
  }

  async function inProcess(dirs: ReturnType<typeof config>['dirs']): Promise<RunningGateway> {
    const gw = await startGateway({ dirs, port: 0, logger: silentLogger, backoffMs: 20, upstreamWaitMs: 20_000 });
    cleanups.push(() => gw.close(2_000));
    return gw;
  }

  it('gateway restarts: a grant given before still lets the call through and its remaining uses carry over', async () => {
    const cfg = config();
    const gw1 = await inProcess(cfg.dirs);
    const c1 = await agent(gw1.url, (await mintToken(gw1.keys, 'coder', 3_600_000)).token);
    const first = c1.callTool({ name: 'fx__echo', arguments: { text: 'one' } });
    const p = await onePending(cfg.dirs.state);
    const { grant } = (await adminRequest(cfg.dirs.state, 'POST', `/approvals/${p.id}/approve`, { by: 'alice', grant: { ttl: '1h', uses: 3 } })) as { grant: Grant };
    expect(((await first) as CallToolResult).isError).toBeFalsy();
    expect(((await c1.callTool({ name: 'fx__echo', arguments: { text: 'two' } })) as CallToolResult).isError).toBeFalsy();
    await gw1.close(2_000);

    const gw2 = await inProcess(cfg.dirs);
    expect((await view(cfg.dirs.state)).grants).toMatchObject([{ id: grant.id, uses: 1, maxUses: 3, expiresAt: grant.expiresAt }]);
    const c2 = await agent(gw2.url, (await mintToken(gw2.keys, 'coder', 3_600_000)).token);
    for (const text of ['three', 'four']) expect(((await c2.callTool({ name: 'fx__echo', arguments: { text } })) as CallToolResult).isError).toBeFalsy();
    // Three uses in all, across the restart: the next call asks again.
    void c2.callTool({ name: 'fx__echo', arguments: { text: 'five' } }).catch(() => undefined);
    await onePending(cfg.dirs.state);
    expect(cfg.calls().filter((l) => l.event === 'call' && l.tool === 'echo').map((l) => (l.args as { text: string }).text)).toEqual(['one', 'two', 'three', 'four']);
    expect(cfg.audit().filter((r) => r.event === 'grant.used' && r.grantId === grant.id).map((r) => r.uses)).toEqual([1, 2, 3]);
  });

  it('corrupt grants file: the gateway starts, grants nothing, and says which file', async () => {
    const cfg = config();
    const file = join(cfg.dirs.state, 'approvals', 'approvals.json');
    mkdirSync(join(cfg.dirs.state, 'approvals'), { recursive: true, mode: 0o700 });
    // A forged grant with an impossible use count: the whole file is refused.
    const forged = { id: 'gr_0123456789', agent: 'coder', ruleId: 'echo-asks', tool: 'fx__echo', by: 'alice', approvalId: 'ap_0123456789', createdAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 3_600_000).toISOString(), maxUses: 5, uses: -100 };
    writeFileSync(file, JSON.stringify({ version: 1, savedAt: new Date().toISOString(), pending: [], grants: [forged], withdrawn: [] }), { mode: 0o600 });
    const gw = await inProcess(cfg.dirs);
    const rec = cfg.audit().find((r) => r.event === 'approvals.state');
    expect(rec).toMatchObject({ ok: false, file, effect: 'started with no grants' });
    expect(String(rec?.error)).toContain(file);
    expect((await view(cfg.dirs.state)).grants).toEqual([]);
    const c = await agent(gw.url, (await mintToken(gw.keys, 'coder', 3_600_000)).token);
    void c.callTool({ name: 'fx__echo', arguments: { text: 'no free pass' } }).catch(() => undefined);
    await onePending(cfg.dirs.state);
    expect(cfg.calls().filter((l) => l.event === 'call')).toEqual([]);
  });

  describe('gatehouse serve SIGKILLed', () => {
    async function serve(root: string, dirs: ReturnType<typeof config>['dirs']): Promise<Serving> {
      const s = await startServe(['--registry', dirs.registry, '--policies', dirs.policies], { HOME: root, GATEHOUSE_STATE: dirs.state, GATEHOUSE_LOG_LEVEL: 'error' });
      cleanups.push(() => void s.child.kill('SIGKILL'));
      return s;
    }

    it('gateway restarts with a call waiting for approval: the approval is reported withdrawn, never executed; a grant and its uses carry over', { timeout: 60_000 }, async () => {
      const cfg = config();
      const a = await serve(cfg.root, cfg.dirs);
      const token = (await mintToken(await loadTokenKeys(cfg.dirs.state), 'coder', 3_600_000)).token;
      const c1 = await agent(a.url, token);
      // A grant, used once.
      const first = c1.callTool({ name: 'fx__echo', arguments: { text: 'granted' } });
      const p1 = await onePending(cfg.dirs.state);
      const { grant } = (await adminRequest(cfg.dirs.state, 'POST', `/approvals/${p1.id}/approve`, { by: 'alice', grant: { ttl: '1h', uses: 2 } })) as { grant: Grant };
      await first;
      expect(((await c1.callTool({ name: 'fx__echo', arguments: { text: 'on the grant' } })) as CallToolResult).isError).toBeFalsy();
      // A call waiting for a human when the gateway dies.
      void c1.callTool({ name: 'fx__add', arguments: { a: 1, b: 2 } }, undefined, { timeout: 120_000 }).catch(() => undefined);
      const waiting = await onePending(cfg.dirs.state);
      const dead = new Promise((r) => a.child.once('exit', r));
      a.child.kill('SIGKILL');
      await dead;

      const b = await serve(cfg.root, cfg.dirs);
      const v = await view(cfg.dirs.state);
      expect(v.pending).toEqual([]);
      expect(v.withdrawn).toMatchObject([{ id: waiting.id, tool: 'fx__add', reason: expect.stringContaining('the gateway restarted') }]);
      expect(v.grants).toMatchObject([{ id: grant.id, uses: 1, maxUses: 2 }]);
      expect(cfg.audit().find((r) => r.event === 'approval.withdrawn' && r.approvalId === waiting.id)).toMatchObject({ reason: expect.stringContaining('the gateway restarted') });
      await expect(adminRequest(cfg.dirs.state, 'POST', `/approvals/${waiting.id}/approve`, { by: 'alice' })).rejects.toThrow(/was withdrawn/);
      // The admin sees it in `gatehouse approvals list`.
      const listed = await run(process.execPath, [CLI, 'approvals', 'list', '--state', cfg.dirs.state], { env: { PATH: process.env.PATH ?? '', HOME: cfg.root } });
      expect(listed.stdout).toMatch(new RegExp(`Withdrawn[\\s\\S]*${waiting.id}\\s+coder\\s+fx__add[\\s\\S]*the gateway restarted`));
      // The last use of the grant, then it is spent.
      const c2 = await agent(b.url, token);
      expect(((await c2.callTool({ name: 'fx__echo', arguments: { text: 'last use' } })) as CallToolResult).isError).toBeFalsy();
      expect((await view(cfg.dirs.state)).grants).toEqual([]);
      expect(cfg.calls().filter((l) => l.event === 'call' && l.tool === 'add')).toEqual([]);
      expect(cfg.calls().filter((l) => l.event === 'call' && l.tool === 'echo')).toHaveLength(3);
    });
  });
});
