/**
 * `gatehouse run --egress` end to end: the real CLI attaches to a gateway
 * (in-process here, so the egress proxy can resolve the simulators' names),
 * the real launcher confines the agent, and real clients inside (npm, curl)
 * go out through HTTP_PROXY/HTTPS_PROXY — only where the policy's egress
 * rules say, every attempt audited.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startTestGateway, TEST_POLICY, type TestGateway } from '../helpers/gateway.js';

const PACKUMENT = { name: 'left-pad', 'dist-tags': { latest: '1.3.0' }, versions: { '1.3.0': { name: 'left-pad', version: '1.3.0', dist: { tarball: 'http://registry.test/left-pad/-/left-pad-1.3.0.tgz' } } } };

let t: TestGateway;
let registry: Server;
let exfil: Server;
let regPort: number;
let exfilPort: number;
const exfilHits: string[] = [];
const registryHits: string[] = [];

async function listen(s: Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

/** Names the agent asks for, resolved by the proxy: the registry simulator, and a name that points back at this machine. */
const HOSTS: Record<string, string[]> = { 'docs.test': ['127.0.0.1'], 'registry.test': ['127.0.0.1'], 'rebind.test': ['127.0.0.1'], 'metadata.test': ['169.254.169.254'] };

beforeAll(async () => {
  registry = createServer((req, res) => {
    registryHits.push(`${req.method} ${req.url}`);
    if (req.url === '/left-pad') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(PACKUMENT));
    res.writeHead(404).end('{}');
  });
  exfil = createServer((req, res) => {
    exfilHits.push(`${req.method} ${req.url}`);
    res.end('stolen');
  });
  regPort = await listen(registry);
  exfilPort = await listen(exfil);
  t = await startTestGateway({
    connectors: () => [],
    policy: {
      ...TEST_POLICY,
      rules: [
        ...TEST_POLICY.rules,
        // Named exactly: the simulator on loopback may be reached.
        { id: 'npm-sim', match: { agent: 'coder', egress: { host: 'registry.test', port: regPort } }, effect: 'allow' },
        // A glob: a name in it that resolves to loopback is a rebinding attempt, refused.
        { id: 'any-test-host', match: { agent: 'coder', egress: { host: '*.test', port: [exfilPort, 80] } }, effect: 'allow' },
        // A human decides, live: named exactly, so once approved the simulator on loopback may be reached.
        { id: 'docs-ask', match: { agent: 'reader*', egress: { host: 'docs.test', port: regPort } }, effect: 'ask', ask: { timeout: '60s', grant: { ttl: '1h', maxUses: 5 } } },
      ],
    },
    runtime: { egressResolve: async (host) => HOSTS[host] ?? Promise.reject(Object.assign(new Error('not found'), { code: 'ENOTFOUND' })) },
  });
});

afterAll(async () => {
  await t?.close();
  registry?.close();
  exfil?.close();
});

function run(agent: string, flags: string[], script: string, onStdout?: (out: string) => void) {
  const ws = join(t.root, `ws-${agent}-${Date.now()}`);
  mkdirSync(ws);
  writeFileSync(join(ws, 'agent.sh'), script);
  return runCli(['run', '--agent', agent, '--workspace', ws, '--no-mcp-config', '--registry', t.dirs.registry, '--policies', t.dirs.policies, ...flags, '--', '/bin/sh', 'agent.sh'], {
    env: { HOME: t.root, GATEHOUSE_STATE: t.dirs.state },
    timeoutMs: 60_000,
    ...(onStdout ? { onStdout } : {}),
  });
}

const egressRecords = () => t.audit().filter((r) => r.event === 'egress');

describe('gatehouse run --egress', () => {
  it('agent_with_egress_reaches_the_allowed_registry_with_npm_and_curl_and_nothing_else', async () => {
    const script = [
      'set +e',
      'echo "proxy=$HTTPS_PROXY"',
      `echo "npm=$(npm view left-pad version --registry http://registry.test:${regPort}/ --no-update-notifier --fetch-retries=0 2>/dev/null)"`,
      // Through a CONNECT tunnel (what HTTPS uses), not only a forwarded request.
      `echo "tunnel=$(curl -sS -p -o /dev/null -w '%{http_code}' http://registry.test:${regPort}/left-pad)"`,
      `echo "rebind=$(curl -sS -p -o /dev/null -w '%{http_code}' http://rebind.test:${exfilPort}/steal 2>&1)"`,
      `echo "rebindplain=$(curl -sS -o /dev/null -w '%{http_code}' http://rebind.test:${exfilPort}/steal)"`,
      `echo "metadata=$(curl -sS -o /dev/null -w '%{http_code}' http://metadata.test/latest/meta-data/)"`,
      `echo "metaip=$(curl -sS -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/)"`,
      `echo "other=$(curl -sS -p -o /dev/null -w '%{http_code}' http://evil.example:443/ 2>&1)"`,
      // Around the proxy: the sandbox has no route anywhere but its relay.
      `echo "direct=$(curl -sS --noproxy '*' -m 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:${exfilPort}/ 2>/dev/null)"`,
    ].join('\n');
    const r = await run('coder', ['--egress'], script);
    expect(r.stderr).not.toMatch(/"level":(50|60)/);
    expect(r.code).toBe(0);
    const out = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(out.proxy).toBe('http://127.0.0.1:8931');
    expect(out.npm).toBe('1.3.0');
    expect(out.tunnel).toBe('200');
    expect(out.rebind).toMatch(/403|CONNECT/);
    expect(out.rebindplain).toBe('403');
    expect(out.metadata).toBe('403');
    expect(out.metaip).toBe('403');
    expect(out.other).toMatch(/403|CONNECT/);
    expect(out.direct).toBe('000');
    expect(exfilHits).toEqual([]);
    expect(registryHits.filter((h) => h === 'GET /left-pad').length).toBeGreaterThanOrEqual(2);

    const recs = egressRecords().filter((e) => e.agent === 'coder');
    const ok = recs.filter((e) => e.outcome === 'ok' || e.outcome === 'closed');
    expect(ok.map((e) => e.host)).toContain('registry.test');
    expect(ok.every((e) => e.host === 'registry.test' && e.rule === 'npm-sim' && typeof e.bytesDown === 'number' && (e.bytesDown as number) > 0)).toBe(true);
    const refused = recs.filter((e) => e.outcome === 'address-refused' || e.outcome === 'denied');
    expect(refused.filter((e) => e.host === 'rebind.test' && e.outcome === 'address-refused')).toHaveLength(2);
    expect(refused.some((e) => e.host === 'metadata.test' && e.outcome === 'address-refused')).toBe(true);
    expect(refused.some((e) => e.host === '169.254.169.254' && e.outcome === 'denied')).toBe(true);
    expect(refused.some((e) => e.host === 'evil.example' && e.outcome === 'denied' && e.decision === 'deny')).toBe(true);
    // Each allowed connection was announced durably before it was opened.
    const intents = t.audit().filter((r) => r.event === 'egress.intent');
    for (const e of ok) expect(intents.some((i) => i.conn === e.conn)).toBe(true);
  }, 90_000);

  it('agent_without_egress_cannot_use_the_relay_as_a_proxy', async () => {
    const before = egressRecords().length;
    const script = [
      'set +e',
      'echo "proxy=${HTTPS_PROXY:-none}"',
      `echo "connect=$(curl -sS -p -x http://127.0.0.1:8931 -m 5 -o /dev/null -w '%{http_code}' http://registry.test:${regPort}/left-pad 2>/dev/null)"`,
      `echo "plain=$(curl -sS -x http://127.0.0.1:8931 -m 5 -o /dev/null -w '%{http_code}' http://registry.test:${regPort}/left-pad 2>/dev/null)"`,
    ].join('\n');
    const hits = registryHits.length;
    // "other" has no egress rule, so the policy does not open the proxy to it either.
    const r = await run('other', [], script);
    expect(r.code).toBe(0);
    const out = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(out.proxy).toBe('none');
    expect(out.connect).toMatch(/^(000|4\d\d)$/);
    expect(out.plain).toMatch(/^4\d\d$/);
    expect(registryHits.length).toBe(hits);
    expect(egressRecords().length).toBe(before);
  }, 60_000);

  it('policy_with_an_egress_rule_for_the_agent_opens_the_proxy_without_the_flag', async () => {
    const r = await run('coder', [], `echo "proxy=\${HTTPS_PROXY:-none}"\ncurl -sS -o /dev/null -w 'code=%{http_code}\\n' http://registry.test:${regPort}/left-pad\n`);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('proxy=http://127.0.0.1:8931');
    expect(r.stdout).toContain('code=200');
    const opened = t.audit().filter((e) => e.event === 'sandbox.opened' && e.agent === 'coder');
    expect(opened.at(-1)?.egress).toBe(true);
  }, 60_000);

  it('ask_on_egress_approved_through_gatehouse_approvals_with_a_grant_that_covers_the_next_connection_of_that_agent_only', async () => {
    const cli = (...args: string[]) => runCli(args, { env: { HOME: t.root, GATEHOUSE_STATE: t.dirs.state } });
    const pending = async (): Promise<Array<{ id: string; egress?: { host: string } }>> => {
      const r = await cli('approvals', 'list', '--json');
      return (JSON.parse(r.stdout) as { pending: Array<{ id: string; egress?: { host: string } }> }).pending;
    };
    const waitPending = async (): Promise<string> => {
      for (let i = 0; i < 200; i++) {
        const p = (await pending()).find((x) => x.egress?.host === 'docs.test');
        if (p) return p.id;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('no egress approval appeared');
    };
    const script = [
      'set +e',
      // 1: waits for a human, who approves with a grant; 2: the grant covers it.
      `echo "first=$(curl -sS -o /dev/null -m 50 -w '%{http_code}' http://docs.test:${regPort}/left-pad)"`,
      `echo "second=$(curl -sS -o /dev/null -m 50 -w '%{http_code}' http://docs.test:${regPort}/left-pad)"`,
    ].join('\n');
    const running = run('reader', ['--egress'], script);
    const id = await waitPending();
    const approved = await cli('approvals', 'approve', id, '--grant', '10m', '--uses', '3', '--by', 'sec-team');
    expect(approved.code).toBe(0);
    expect(approved.stdout).toContain(`approved ${id} (agent reader wants GET http://docs.test:${regPort}/left-pad)`);
    const r = await running;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('first=200');
    expect(r.stdout).toContain('second=200');
    const recs = egressRecords().filter((e) => e.agent === 'reader');
    expect(recs.map((e) => [e.decision, e.outcome])).toEqual([
      ['ask', 'ok'],
      ['ask', 'ok'],
    ]);
    expect(recs[0]).toMatchObject({ approvalId: id, by: 'sec-team' });
    expect(recs[1]?.grantId).toEqual(expect.any(String));

    // Another agent, no rule for it: refused at once, never asked, and reader's grant is not its.
    const hits = registryHits.length;
    const r2 = await run('other-reader', ['--egress'], `curl -sS -m 50 -w '\\ncode=%{http_code}\\n' http://docs.test:${regPort}/left-pad`);
    expect(r2.stdout).toContain('code=403');
    expect(await pending()).toEqual([]);
    expect(registryHits.length).toBe(hits);
  }, 120_000);

  it('ask_on_egress_denied_by_a_human_is_refused_with_the_reason_and_audited', async () => {
    const cli = (...args: string[]) => runCli(args, { env: { HOME: t.root, GATEHOUSE_STATE: t.dirs.state } });
    // reader's grant does not cover reader2 (grants are per agent): reader2 is asked about.
    const hits = registryHits.length;
    const running = run('reader2', ['--egress'], `curl -sS -m 50 -w '\\ncode=%{http_code}\\n' http://docs.test:${regPort}/left-pad`);
    let id: string | undefined;
    for (let i = 0; i < 200 && id === undefined; i++) {
      const r = await cli('approvals', 'list', '--json');
      id = (JSON.parse(r.stdout) as { pending: Array<{ id: string; agent: string }> }).pending.find((p) => p.agent === 'reader2')?.id;
      if (id === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(id).toBeDefined();
    const denied = await cli('approvals', 'deny', id as string, '--reason', 'not during the audit freeze', '--by', 'sec-team');
    expect(denied.code).toBe(0);
    const r = await running;
    expect(r.stdout).toContain('code=403');
    expect(r.stdout).toContain('not during the audit freeze');
    expect(registryHits.length).toBe(hits);
    expect(egressRecords().find((e) => e.agent === 'reader2')).toMatchObject({ decision: 'ask', outcome: 'denied', approvalId: id, by: 'sec-team' });
  }, 120_000);
});
