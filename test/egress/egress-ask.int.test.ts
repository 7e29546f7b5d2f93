/**
 * `effect: ask` through the egress proxy over real sockets: a loopback HTTP
 * server is the target, the real Approvals object decides, and a human answers
 * with the `gatehouse approvals` command in-process against the admin API on a
 * real control socket (the same route `gatehouse serve` mounts). Each test is
 * named after what it stops.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../src/audit/writer.js';
import type { Gateway } from '../../src/broker/gateway.js';
import { approvalsCommand } from '../../src/cli/approvals.js';
import type { Io } from '../../src/cli/command.js';
import { runGatehouse } from '../../src/cli/program.js';
import { EgressProxy, type EgressIdentity, type Resolver } from '../../src/egress/proxy.js';
import { silentLogger } from '../../src/log.js';
import { approvalRecord } from '../../src/policy/approval-audit.js';
import { approvalStateIn } from '../../src/policy/approval-state.js';
import { Approvals } from '../../src/policy/approvals.js';
import { loadPolicyFiles, memorySource } from '../../src/policy/load.js';
import { createAdminApi } from '../../src/server/admin.js';
import { listenControl } from '../../src/server/control.js';
import type { SessionManager } from '../../src/server/mcp-sessions.js';
import { openLog, tempState } from '../audit/helpers.js';
import { until } from '../helpers/gateway.js';

const state = tempState();
let log: AuditLog;
let target: HttpServer;
let targetPort: number;
let approvals: Approvals;
let control: { close(): Promise<void> };
const listeners: NetServer[] = [];
const proxies: EgressProxy[] = [];
const hits: string[] = [];

const DNS: Record<string, string[]> = { 'registry.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] };
const resolver: Resolver = async (host) => DNS[host] ?? [];

function policyText(port: number): string {
  return `version: 1
rules:
  - id: registry-asks
    match: { agent: coder, egress: { host: registry.test, port: ${port} } }
    effect: ask
    ask: { timeout: 1m, grant: { ttl: 1h, maxUses: 100 } }
  - id: other-asks
    match: { agent: coder, egress: { host: other.test, port: ${port} } }
    effect: ask
  - id: glob-asks
    match: { agent: coder, egress: { host: "*.glob.test", port: ${port} } }
    effect: ask
`;
}

async function startProxy(who: EgressIdentity, withApprovals = true): Promise<number> {
  const policy = loadPolicyFiles(['/p/egress.yaml'], memorySource({ '/p/egress.yaml': policyText(targetPort) }));
  const proxy = new EgressProxy({ policy: () => policy, audit: log, logger: silentLogger, resolve: resolver, ...(withApprovals ? { approvals } : {}), limits: { connectTimeoutMs: 2_000 } });
  proxies.push(proxy);
  const server = createNetServer((s) => proxy.accept(s, who));
  listeners.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

const coder: EgressIdentity = { caller: { kind: 'agent', name: 'coder' }, sandbox: 'sb-int' };

/** `gatehouse approvals ARGS…` in-process, against the control socket of this test's state directory. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => void (out += s), err: (s) => void (err += s), env: {}, stdin: process.stdin, isTTY: false };
  const code = await runGatehouse(['approvals', ...args, '--state', state.state], io, [approvalsCommand]);
  return { code, out, err };
}

beforeAll(async () => {
  log = await openLog(state.dir);
  approvals = new Approvals({ state: approvalStateIn(state.state), onEvent: (e) => void log.append(approvalRecord(e)) });
  const app = new Hono();
  // Only the approvals routes are driven here; /status (which reads these two) is not.
  app.route('/admin/v1', createAdminApi({ gateway: {} as Gateway, sessions: {} as SessionManager, approvals }));
  control = await listenControl(state.state, app);
  target = createHttpServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    res.end(`pong ${req.url}`);
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  targetPort = (target.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const p of proxies) p.close();
  for (const l of listeners) l.close();
  await approvals.close();
  await control.close();
  target.closeAllConnections();
  target.close();
  await log.close();
  rmSync(state.state, { recursive: true, force: true });
});

interface Exchange {
  status: number;
  rest: string;
}

/** Sends `head`; after a 200 to a CONNECT sends `then` through the tunnel; reads to the end. `hangUp` closes the client instead of waiting. */
function raw(port: number, head: string, then?: string, hangUp?: Promise<void>): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    let sent = false;
    s.setTimeout(20_000, () => s.destroy(new Error('client timeout')));
    s.on('data', (b: Buffer) => {
      buf += b.toString('latin1');
      if (!sent && then !== undefined && buf.includes('\r\n\r\n') && buf.startsWith('HTTP/1.1 200')) {
        sent = true;
        s.write(then);
      }
    });
    s.on('error', reject);
    s.on('close', () => {
      const end = buf.indexOf('\r\n\r\n');
      resolve({ status: Number(buf.slice(9, 12)), rest: end === -1 ? '' : buf.slice(end + 4) });
    });
    s.write(head);
    void hangUp?.then(() => s.destroy());
  });
}

const CONNECT = (host: string): string => `CONNECT ${host}:${targetPort} HTTP/1.1\r\nHost: ${host}:${targetPort}\r\n\r\n`;
const GET = (path: string, host = 'registry.test'): string => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;

function records(): Array<Record<string, unknown>> {
  return readFileSync(join(state.dir, 'audit.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const pendingFor = (host: string) => until(() => approvals.list().find((p) => p.egress?.host === host), `a pending approval for ${host}`);

describe('egress ask through the proxy', () => {
  it('approved with `gatehouse approvals approve`: the tunnel opens to the loopback target and is audited with who approved', async () => {
    const port = await startProxy(coder);
    const x = raw(port, CONNECT('registry.test'), GET('/-/approved'));
    const p = await pendingFor('registry.test');

    const list = await cli('list');
    expect(list.out).toContain(`agent coder wants CONNECT registry.test:${targetPort}`);
    expect(list.out).toMatch(/Egress connections waiting for approval/);
    const json = JSON.parse((await cli('list', '--json')).out) as { pending: Array<Record<string, unknown>> };
    expect(json.pending.find((a) => a.id === p.id)).toMatchObject({ egress: { caller: { kind: 'agent', name: 'coder' }, host: 'registry.test', port: targetPort, sandbox: 'sb-int' }, ruleId: 'registry-asks' });
    const show = await cli('show', p.id);
    expect(show.out).toMatch(/wants +CONNECT registry\.test:\d+/);

    const approved = await cli('approve', p.id, '--by', 'alice');
    expect(approved).toMatchObject({ code: 0, out: `approved ${p.id} (agent coder wants CONNECT registry.test:${targetPort})\n` });
    const r = await x;
    expect(r.status).toBe(200);
    expect(r.rest).toMatch(/pong \/-\/approved/);
    const rec = await until(() => records().find((a) => a.event === 'egress' && a.approvalId === p.id), 'the egress record');
    expect(rec).toMatchObject({ decision: 'ask', rule: 'registry-asks', by: 'alice', outcome: 'closed', address: '127.0.0.1', sandbox: 'sb-int' });
  });

  it('denied with `gatehouse approvals deny`: 403 with the reason, nothing reaches the target, audited as denied by whom', async () => {
    const port = await startProxy(coder);
    const before = hits.length;
    const x = raw(port, GET('/-/denied?token=secret', 'other.test').replace('GET /-/denied', `GET http://other.test:${targetPort}/-/denied`));
    const p = await pendingFor('other.test');
    expect(p.tool).toBe(`GET http://other.test:${targetPort}/-/denied`);
    const denied = await cli('deny', p.id, '--by', 'bob', '--reason', 'no internal hosts');
    expect(denied.out).toBe(`denied ${p.id} (agent coder wants GET http://other.test:${targetPort}/-/denied)\n`);
    const r = await x;
    expect(r.status).toBe(403);
    expect(r.rest).toMatch(/not approved: no internal hosts/);
    expect(hits.length).toBe(before);
    const rec = await until(() => records().find((a) => a.event === 'egress' && a.approvalId === p.id), 'the egress record');
    expect(rec).toMatchObject({ decision: 'ask', outcome: 'denied', by: 'bob', method: 'GET', path: '/-/denied' });
    expect(JSON.stringify(records().filter((a) => a.approvalId === p.id))).not.toContain('secret');
  });

  it('the client hangs up while waiting: the approval is withdrawn, approving it afterwards fails, nothing connects', async () => {
    const port = await startProxy(coder);
    const before = hits.length;
    let hangUp!: () => void;
    const x = raw(port, CONNECT('other.test'), undefined, new Promise<void>((r) => (hangUp = r)));
    const p = await pendingFor('other.test');
    hangUp();
    await x;
    await until(() => approvals.withdrawn().find((w) => w.id === p.id), 'the withdrawal');
    const late = await cli('approve', p.id);
    expect(late.code).not.toBe(0);
    expect(late.err).toMatch(/withdrawn/);
    expect(hits.length).toBe(before);
    expect(await until(() => records().find((a) => a.event === 'egress' && a.approvalId === p.id), 'the egress record')).toMatchObject({ outcome: 'client-gone' });
  });

  it('a session grant from `approve --session` lets the next connection through without asking', async () => {
    const port = await startProxy(coder);
    const first = raw(port, CONNECT('registry.test'), GET('/-/one'));
    const p = await pendingFor('registry.test');
    const approved = await cli('approve', p.id, '--session', '--json');
    const body = JSON.parse(approved.out) as { grant: { id: string; egress: Record<string, unknown>; maxUses: number } };
    expect(body.grant).toMatchObject({ maxUses: 100, egress: { caller: 'agent', host: 'registry.test', port: targetPort, sandbox: 'sb-int' } });
    expect((await first).status).toBe(200);
    const second = await raw(port, CONNECT('registry.test'), GET('/-/two'));
    expect(second.status).toBe(200);
    expect(second.rest).toMatch(/pong \/-\/two/);
    expect((await cli('list')).out).toMatch(/egress registry\.test:\d+ \(sandbox sb-int only\)/);
    // Another sandbox session of the same agent is asked again.
    const elsewhere = await startProxy({ caller: coder.caller, sandbox: 'sb-other' });
    const third = raw(elsewhere, CONNECT('registry.test'));
    const again = await pendingFor('registry.test');
    expect(again.egress?.sandbox).toBe('sb-other');
    await cli('deny', again.id);
    expect((await third).status).toBe(403);
    approvals.sandboxEnded('sb-int');
  });

  it('an approved ask rule naming a glob still refuses a private (loopback) address', async () => {
    DNS['db.glob.test'] = ['127.0.0.1'];
    const port = await startProxy(coder);
    const before = hits.length;
    const x = raw(port, CONNECT('db.glob.test'), GET('/-/private'));
    await cli('approve', (await pendingFor('db.glob.test')).id);
    const r = await x;
    expect(r.status).toBe(403);
    expect(r.rest).toMatch(/127\.0\.0\.1.*only a rule naming this host exactly/);
    expect(hits.length).toBe(before);
  });

  it('a proxy given no approvals refuses an ask rule at once (fail closed, "no approver")', async () => {
    const port = await startProxy(coder, false);
    const r = await raw(port, CONNECT('registry.test'));
    expect(r.status).toBe(403);
    expect(r.rest).toMatch(/no approver/i);
  });

  it('a hostile host in a saved approval is shown escaped by `approvals list`, never as terminal control codes', async () => {
    // The proxy never lets such a host through; the display must not trust that (the state file, a future caller).
    const hostile = 'evil\u001b[2J\u202e.test';
    const v = approvals.requestEgress({ caller: { kind: 'agent', name: 'coder\u001b]52;c;x\u0007' }, host: hostile, port: 443 }, { effect: 'ask', ruleId: 'r', message: 'm', ask: { timeoutMs: 60_000 } });
    const p = await pendingFor(hostile);
    const out = (await cli('list')).out + (await cli('show', p.id)).out;
    expect(out).not.toMatch(/[\u001b\u0007\u202e]/);
    expect(out).toContain('evil\\x1b[2J\\u202e.test');
    approvals.deny(p.id, { by: 'bob' });
    await v;
  });
});
