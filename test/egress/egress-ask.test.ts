/**
 * `effect: ask` on egress rules: the gate waits for a human through the same
 * Approvals object tool calls use (real, with its state in a temp directory),
 * and writes the one `egress` record for what became of the wait. Each test is
 * named after what it stops.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../src/audit/writer.js';
import { gate, type EgressIdentity, type GateDeps } from '../../src/egress/gate.js';
import type { EgressTarget } from '../../src/egress/target.js';
import { silentLogger } from '../../src/log.js';
import { approvalStateIn } from '../../src/policy/approval-state.js';
import { approvalRecord } from '../../src/policy/approval-audit.js';
import { Approvals, type ApprovalEvent } from '../../src/policy/approvals.js';
import { evaluateEgress } from '../../src/policy/egress.js';
import { loadPolicyFiles, memorySource } from '../../src/policy/load.js';
import type { Policy } from '../../src/policy/types.js';
import { openLog, tempState } from '../audit/helpers.js';
import { until } from '../helpers/gateway.js';
import { tempDir } from '../helpers/tmp.js';
import { FakeClock } from '../policy/fake-clock.js';
import { issuesOf } from '../policy/helpers.js';

const POLICY = `version: 1
rules:
  - id: npm-asks
    match: { agent: coder, egress: { host: "*.npmjs.org", port: 443 } }
    effect: ask
    message: Registry access needs a human.
    ask: { timeout: 2m, grant: { ttl: 1h, maxUses: 50 } }
  - id: internal-asks
    match: { agent: coder, egress: { host: "*.internal.test", port: 443 } }
    effect: ask
    ask: { grant: { ttl: 1h, maxUses: 5 } }
  - id: named-internal-asks
    match: { agent: coder, egress: { host: named.internal.example, port: 443 } }
    effect: ask
  - id: any-caller-asks
    match: { egress: { host: shared.example, port: 443 } }
    effect: ask
    ask: { grant: { ttl: 1h, maxUses: 5 } }
  - id: web-asks
    match: { agent: web, egress: { host: docs.example, port: 80, method: GET, path: "/api/**" } }
    effect: ask
`;

const DNS: Record<string, string[]> = {
  'registry.npmjs.org': ['104.16.1.34'],
  'evil.npmjs.org': ['104.16.1.35'],
  'db.internal.test': ['10.0.0.5'],
  'named.internal.example': ['10.0.0.6'],
  'shared.example': ['93.184.215.14'],
  'docs.example': ['93.184.215.15'],
};

const policy: Policy = loadPolicyFiles(['/p/egress.yaml'], memorySource({ '/p/egress.yaml': POLICY }));
const state = tempState();
const dirs: string[] = [];
let log: AuditLog;

beforeAll(async () => {
  log = await openLog(state.dir);
});
afterAll(async () => {
  await log.close();
  rmSync(state.state, { recursive: true, force: true });
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A real Approvals whose state is saved in a fresh directory, its events audited like the gateway's. */
function setup(stateDir = tempDir('gh-egress-ask-')) {
  dirs.push(stateDir);
  const clock = new FakeClock();
  const events: ApprovalEvent[] = [];
  const approvals = new Approvals({
    clock,
    state: approvalStateIn(stateDir),
    onEvent: (e) => {
      events.push(e);
      // A state save still in flight when afterAll removes the folders reports a state_error after the log
      // closed: not what these tests judge, and no reason for an unhandled rejection.
      log.append(approvalRecord(e)).catch(() => undefined);
    },
  });
  const deps: GateDeps = {
    policy: () => policy,
    audit: log,
    logger: silentLogger,
    resolve: async (host) => DNS[host] ?? [],
    resolveTimeoutMs: 1_000,
    now: Date.now,
    approvals,
  };
  return { clock, events, approvals, deps, stateDir };
}

const coder: EgressIdentity = { caller: { kind: 'agent', name: 'coder' }, sandbox: 'sb-1' };
const to = (host: string, port = 443): EgressTarget => ({ host, port, literal: false });

function records(): Array<Record<string, unknown>> {
  return readFileSync(join(state.dir, 'audit.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The one pending approval, once saved and shown. */
const pendingOne = (a: Approvals) => until(() => a.list()[0], 'a pending egress approval');

describe('egress ask rules at load', () => {
  it('an egress rule may ask, with its timeout and grant limit kept', () => {
    const d = evaluateEgress(policy, { caller: coder.caller, host: 'registry.npmjs.org', port: 443 });
    expect(d).toMatchObject({ effect: 'ask', ruleId: 'npm-asks', ask: { timeoutMs: 120_000, grant: { ttlMs: 3_600_000, maxUses: 50 } }, hostNamed: false });
  });

  it('an ask rule naming the host exactly counts as naming it; one with a glob does not', () => {
    expect(evaluateEgress(policy, { caller: coder.caller, host: 'named.internal.example', port: 443 }).hostNamed).toBe(true);
    expect(evaluateEgress(policy, { caller: coder.caller, host: 'db.internal.test', port: 443 }).hostNamed).toBe(false);
  });

  it('an ask timeout of zero is refused at load, as for tool calls', () => {
    const issues = issuesOf(() => loadPolicyFiles(['/p/x.yaml'], memorySource({ '/p/x.yaml': 'version: 1\nrules:\n  - { id: a, match: { egress: { host: x.org, port: 443 } }, effect: ask, ask: { timeout: 0s } }\n' })));
    expect(issues.map((i) => `${i.key}: ${i.message}`).join('\n')).toMatch(/timeout/);
  });
});

describe('egress ask: one connection', () => {
  it('approved: the connection goes on to resolution and the address check, its record says who approved', async () => {
    const { approvals, deps } = setup();
    const verdict = gate(deps, coder, to('registry.npmjs.org'));
    const p = await pendingOne(approvals);
    expect(p).toMatchObject({ agent: 'coder', tool: 'CONNECT registry.npmjs.org:443', ruleId: 'npm-asks', egress: { caller: { kind: 'agent', name: 'coder' }, host: 'registry.npmjs.org', port: 443, sandbox: 'sb-1' } });
    await approvals.approve(p.id, { by: 'alice' });
    const v = await verdict;
    expect(v.go).toBe(true);
    if (!v.go) return;
    expect(v.addresses).toEqual(['104.16.1.34']);
    expect(v.record).toMatchObject({ decision: 'ask', rule: 'npm-asks', approvalId: p.id, by: 'alice', host: 'registry.npmjs.org' });
    const intent = await until(() => records().find((r) => r.event === 'egress.intent' && r.approvalId === p.id), 'the intent record');
    expect(intent).toMatchObject({ decision: 'ask', by: 'alice', agent: 'coder', sandbox: 'sb-1' });
    expect(await until(() => records().find((r) => r.event === 'approval.requested' && r.approvalId === p.id), 'the approval record')).toMatchObject({
      tool: 'CONNECT registry.npmjs.org:443',
      egress: { host: 'registry.npmjs.org', port: 443, caller: { kind: 'agent', name: 'coder' } },
    });
  });

  it('denied: 403 with the reason, and one egress record with decision ask, outcome denied and who decided', async () => {
    const { approvals, deps } = setup();
    const verdict = gate(deps, coder, to('evil.npmjs.org'));
    const p = await pendingOne(approvals);
    approvals.deny(p.id, { by: 'bob', reason: 'not that one' });
    expect(await verdict).toMatchObject({ go: false, status: 403, message: 'not approved: not that one' });
    const r = await until(() => records().find((x) => x.event === 'egress' && x.approvalId === p.id), 'the egress record');
    expect(r).toMatchObject({ decision: 'ask', outcome: 'denied', by: 'bob', reason: 'not approved: not that one', host: 'evil.npmjs.org' });
    expect(records().some((x) => x.event === 'egress.intent' && x.approvalId === p.id)).toBe(false);
  });

  it('nobody answers: refused when the rule ask timeout passes, recorded as a timeout', async () => {
    const { approvals, deps, clock } = setup();
    const verdict = gate(deps, coder, to('registry.npmjs.org'));
    const p = await pendingOne(approvals);
    clock.advance(119_000);
    expect(approvals.list()).toHaveLength(1);
    clock.advance(1_000);
    expect(await verdict).toMatchObject({ go: false, status: 403, message: expect.stringMatching(/no answer within 120s/) });
    expect(await until(() => records().find((x) => x.event === 'egress' && x.approvalId === p.id), 'the egress record')).toMatchObject({ decision: 'ask', outcome: 'timeout' });
  });

  it('the client hangs up while waiting: the approval is withdrawn and can no longer be approved', async () => {
    const { approvals, deps } = setup();
    const gone = new AbortController();
    const verdict = gate(deps, coder, to('registry.npmjs.org'), undefined, gone.signal);
    const p = await pendingOne(approvals);
    gone.abort('the client closed its connection');
    expect(await verdict).toMatchObject({ go: false, status: 403, message: expect.stringMatching(/withdrawn/) });
    expect(approvals.list()).toEqual([]);
    expect(approvals.withdrawn()[0]).toMatchObject({ id: p.id, egress: { host: 'registry.npmjs.org' } });
    await expect(approvals.approve(p.id, { by: 'alice' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await until(() => records().find((x) => x.event === 'egress' && x.approvalId === p.id), 'the egress record')).toMatchObject({ outcome: 'client-gone' });
  });

  it('no approver given: an ask rule fails closed with 403 "no approver"', async () => {
    const { deps } = setup();
    const { approvals: _none, ...without } = deps;
    const v = await gate(without, coder, to('registry.npmjs.org'));
    expect(v).toMatchObject({ go: false, status: 403, message: expect.stringMatching(/no approver/i) });
  });

  it('plain HTTP: the approver sees method, URL and path (never the query), and a CONNECT to the same host cannot pass the path rule by asking differently', async () => {
    const { approvals, deps } = setup();
    const web: EgressIdentity = { caller: { kind: 'agent', name: 'web' } };
    const verdict = gate(deps, web, to('docs.example', 80), { method: 'GET', path: '/api/v1/items' });
    const p = await pendingOne(approvals);
    expect(p.tool).toBe('GET http://docs.example:80/api/v1/items');
    expect(p.egress).toMatchObject({ method: 'GET', path: '/api/v1/items' });
    expect(p.egress?.sandbox).toBeUndefined();
    approvals.deny(p.id, { by: 'bob' });
    await verdict;
    // A tunnel shows no path: the ask rule counts as matching it (fail closed, as for tool arguments), so it asks too.
    expect(evaluateEgress(policy, { caller: web.caller, host: 'docs.example', port: 80 })).toMatchObject({ effect: 'ask', ruleId: 'web-asks' });
  });
});

describe('egress ask: grants', () => {
  it('a grant lets the next connection of the same caller to the same host:port through without asking, and ends with its ttl', async () => {
    const { approvals, deps, clock } = setup();
    const first = gate(deps, coder, to('registry.npmjs.org'));
    const p = await pendingOne(approvals);
    const { grant } = await approvals.approve(p.id, { by: 'alice', grant: { ttlMs: 600_000, maxUses: 10 } });
    expect(grant).toMatchObject({ agent: 'coder', ruleId: 'npm-asks', tool: 'registry.npmjs.org:443', egress: { caller: 'agent', host: 'registry.npmjs.org', port: 443 } });
    expect((await first).go).toBe(true);

    const second = await gate(deps, coder, to('registry.npmjs.org'));
    expect(second).toMatchObject({ go: true, record: { decision: 'ask', grantId: grant?.id, by: 'alice' } });
    expect(approvals.list()).toEqual([]);

    clock.advance(600_000);
    const third = gate(deps, coder, to('registry.npmjs.org'));
    const again = await pendingOne(approvals);
    expect(again.id).not.toBe(p.id);
    approvals.deny(again.id, { by: 'bob' });
    expect((await third).go).toBe(false);
  });

  it('a grant for one host does not open another host under the same glob rule', async () => {
    const { approvals, deps } = setup();
    const first = gate(deps, coder, to('registry.npmjs.org'));
    const p = await pendingOne(approvals);
    await approvals.approve(p.id, { by: 'alice', grant: { ttlMs: 600_000, maxUses: 10 } });
    await first;
    const v = gate(deps, coder, to('evil.npmjs.org'));
    const asked = await pendingOne(approvals);
    expect(asked).toMatchObject({ ruleId: 'npm-asks', egress: { host: 'evil.npmjs.org' } });
    approvals.deny(asked.id, { by: 'bob' });
    expect((await v).go).toBe(false);
    expect(approvals.grants()[0]).toMatchObject({ uses: 0 });
  });

  it('a grant to agent "github" does not open the same host for the connector "github" (a rule naming neither matches both)', async () => {
    const { approvals, deps } = setup();
    const agentGithub: EgressIdentity = { caller: { kind: 'agent', name: 'github' } };
    const connGithub: EgressIdentity = { caller: { kind: 'connector', name: 'github' } };
    const first = gate(deps, agentGithub, to('shared.example'));
    const p = await pendingOne(approvals);
    await approvals.approve(p.id, { by: 'alice', grant: { ttlMs: 600_000, maxUses: 5 } });
    await first;
    const v = gate(deps, connGithub, to('shared.example'));
    const asked = await pendingOne(approvals);
    expect(asked.egress?.caller).toEqual({ kind: 'connector', name: 'github' });
    approvals.deny(asked.id, { by: 'bob' });
    expect((await v).go).toBe(false);
  });

  it('a grant "for this sandbox session" covers that session only, and ends when the session ends', async () => {
    const { approvals, deps } = setup();
    const first = gate(deps, coder, to('registry.npmjs.org'));
    const p = await pendingOne(approvals);
    const { grant } = await approvals.approve(p.id, { by: 'alice', session: true });
    // Without --grant, as large as the rule allows.
    expect(grant).toMatchObject({ maxUses: 50, egress: { sandbox: 'sb-1' } });
    await first;
    expect(await gate(deps, coder, to('registry.npmjs.org'))).toMatchObject({ go: true, record: { grantId: grant?.id } });

    const otherSession = gate(deps, { caller: coder.caller, sandbox: 'sb-2' }, to('registry.npmjs.org'));
    const asked = await pendingOne(approvals);
    expect(asked.egress?.sandbox).toBe('sb-2');
    approvals.deny(asked.id, { by: 'bob' });
    expect((await otherSession).go).toBe(false);

    approvals.sandboxEnded('sb-1');
    expect(approvals.grants()).toEqual([]);
    const after = gate(deps, coder, to('registry.npmjs.org'));
    approvals.deny((await pendingOne(approvals)).id, { by: 'bob' });
    expect((await after).go).toBe(false);
  });

  it('a session grant for a connection that came from no sandbox is refused, not silently widened to every session', async () => {
    const { approvals, deps } = setup();
    const v = gate(deps, { caller: coder.caller }, to('registry.npmjs.org'));
    const p = await pendingOne(approvals);
    await expect(approvals.approve(p.id, { by: 'alice', session: true })).rejects.toMatchObject({ code: 'USAGE' });
    approvals.deny(p.id, { by: 'bob' });
    await v;
  });

  it('an egress grant survives a restart with its scope (saved and loaded by the strict state schema)', async () => {
    const a = setup();
    const first = gate(a.deps, coder, to('registry.npmjs.org'));
    const p = await pendingOne(a.approvals);
    const { grant } = await a.approvals.approve(p.id, { by: 'alice', session: true });
    await first;
    await a.approvals.close();
    const b = setup(a.stateDir);
    expect(b.events.find((e) => e.type === 'state_rejected')).toBeUndefined();
    expect(b.approvals.grants()).toEqual([expect.objectContaining({ id: grant?.id, egress: { caller: 'agent', host: 'registry.npmjs.org', port: 443, sandbox: 'sb-1', tunnel: true } })]);
    expect(await gate(b.deps, coder, to('registry.npmjs.org'))).toMatchObject({ go: true, record: { grantId: grant?.id } });
  });

  it('a tool-call grant never covers a connection (and the reverse): same agent and rule id, different kinds', async () => {
    const { approvals, deps } = setup();
    const d = evaluateEgress(policy, { caller: coder.caller, host: 'registry.npmjs.org', port: 443 });
    // A tool-call approval under the same rule id, granted.
    const call = approvals.request({ agent: 'coder', connector: 'npm', tool: 'registry.npmjs.org:443', upstreamTool: 'x', args: {}, time: new Date() }, d, {});
    const p = await pendingOne(approvals);
    await approvals.approve(p.id, { by: 'alice', grant: { ttlMs: 600_000, maxUses: 5 } });
    await call;
    const v = gate(deps, coder, to('registry.npmjs.org'));
    const asked = await pendingOne(approvals);
    expect(asked.egress).toBeDefined();
    approvals.deny(asked.id, { by: 'bob' });
    expect((await v).go).toBe(false);
  });
});

describe('egress ask: the address check after approval', () => {
  it('an approved ask rule naming a glob still refuses a name resolving to a private address', async () => {
    const { approvals, deps } = setup();
    const verdict = gate(deps, coder, to('db.internal.test'));
    await approvals.approve((await pendingOne(approvals)).id, { by: 'alice' });
    expect(await verdict).toMatchObject({ go: false, status: 403, message: expect.stringMatching(/resolves to 10\.0\.0\.5.*only a rule naming this host exactly/) });
    expect(await until(() => records().find((x) => x.event === 'egress' && x.host === 'db.internal.test'), 'the egress record')).toMatchObject({ decision: 'ask', outcome: 'address-refused', by: 'alice' });
  });

  it('a grant under a glob ask rule does not lift the address check either', async () => {
    const { approvals, deps } = setup();
    const first = gate(deps, coder, to('db.internal.test'));
    await approvals.approve((await pendingOne(approvals)).id, { by: 'alice', grant: { ttlMs: 600_000, maxUses: 5 } });
    expect((await first).go).toBe(false);
    expect(await gate(deps, coder, to('db.internal.test'))).toMatchObject({ go: false, message: expect.stringMatching(/only a rule naming this host exactly/) });
  });

  it('an approved ask rule naming the host exactly may reach its private address, as an allow rule may', async () => {
    const { approvals, deps } = setup();
    const verdict = gate(deps, coder, to('named.internal.example'));
    await approvals.approve((await pendingOne(approvals)).id, { by: 'alice' });
    expect(await verdict).toMatchObject({ go: true, addresses: ['10.0.0.6'] });
  });
});

describe('egress ask: what a grant covers (F2: a grant never reaches past what a human judged)', () => {
  const DOCS_POLICY = `version: 1
rules:
  - id: docs-asks
    match: { agent: web, egress: { host: docs.example, port: 80, method: [GET, HEAD], path: "/docs/**" } }
    effect: ask
    ask: { grant: { ttl: 1h, maxUses: 50 } }
  - id: plain-asks
    match: { agent: web, egress: { host: plain.example, port: 80 } }
    effect: ask
    ask: { grant: { ttl: 1h, maxUses: 50 } }
`;
  const docsPolicy = loadPolicyFiles(['/p/docs.yaml'], memorySource({ '/p/docs.yaml': DOCS_POLICY }));
  const web: EgressIdentity = { caller: { kind: 'agent', name: 'web' }, sandbox: 'sb-w' };
  const HOUR = { ttlMs: 3_600_000, maxUses: 50 };

  function docsSetup() {
    const s = setup();
    const addrs: Record<string, string[]> = { ...DNS, 'plain.example': ['93.184.215.16'] };
    const deps: GateDeps = { ...s.deps, policy: () => docsPolicy, resolve: async (h) => addrs[h] ?? [] };
    return { ...s, deps };
  }

  /** Approves the first GET under `rule` with a one-hour grant; returns the grant. */
  async function grantFromGet(a: Approvals, deps: GateDeps, host: string, path: string) {
    const first = gate(deps, web, to(host, 80), { method: 'GET', path });
    const p = await pendingOne(a);
    const { grant } = await a.approve(p.id, { by: 'alice', grant: HOUR });
    expect((await first).go).toBe(true);
    expect(grant?.egress).toMatchObject({ tunnel: false });
    return grant;
  }

  /** The request is asked (a human sees it), not let through by a grant; denied here. */
  async function expectAsked(a: Approvals, verdict: ReturnType<typeof gate>) {
    const asked = await pendingOne(a);
    a.deny(asked.id, { by: 'bob' });
    expect(await verdict).toMatchObject({ go: false, message: 'not approved: denied by bob' });
    return asked;
  }

  it('grant_from_a_plain_http_approval_does_not_open_a_raw_tunnel', async () => {
    const { approvals, deps } = docsSetup();
    // The attack as reported: GET /docs/a approved with a 1-hour grant, then CONNECT to the same host:port.
    const g = await grantFromGet(approvals, deps, 'docs.example', '/docs/a');
    expect(await gate(deps, web, to('docs.example', 80), { method: 'GET', path: '/docs/b' })).toMatchObject({ go: true, record: { grantId: g?.id } });
    const tunnel = await expectAsked(approvals, gate(deps, web, to('docs.example', 80)));
    expect(tunnel).toMatchObject({ tool: 'CONNECT docs.example:80', grantCovers: expect.stringMatching(/^nothing: rule "docs-asks" names a method or path/) });
    expect(tunnel.grantLimit).toBeUndefined();
    // A rule on host and port alone judges both kinds: there the grant's kind is what keeps the tunnel shut.
    const plain = await grantFromGet(approvals, deps, 'plain.example', '/anything');
    const t2 = await expectAsked(approvals, gate(deps, web, to('plain.example', 80)));
    expect(t2.grantCovers).toBe('CONNECT tunnels to plain.example:80');
    expect(approvals.grants().find((x) => x.id === plain?.id)).toMatchObject({ uses: 0 });
  });

  it('grant_from_a_tunnel_approval_does_not_cover_plain_http', async () => {
    const { approvals, deps } = docsSetup();
    const first = gate(deps, web, to('plain.example', 80));
    const p = await pendingOne(approvals);
    expect(p.grantCovers).toBe('CONNECT tunnels to plain.example:80');
    const { grant } = await approvals.approve(p.id, { by: 'alice', grant: HOUR });
    expect(grant?.egress).toMatchObject({ tunnel: true });
    expect((await first).go).toBe(true);
    expect(await gate(deps, web, to('plain.example', 80))).toMatchObject({ go: true, record: { grantId: grant?.id } });
    const asked = await expectAsked(approvals, gate(deps, web, to('plain.example', 80), { method: 'POST', path: '/upload' }));
    expect(asked.grantCovers).toBe('plain-HTTP requests (any method) to plain.example:80 (any path)');
    expect(approvals.grants()[0]).toMatchObject({ id: grant?.id, uses: 1 });
  });

  it('a_dotdot_path_under_a_path_rule_is_always_asked_never_granted', async () => {
    const { approvals, deps } = docsSetup();
    const g = await grantFromGet(approvals, deps, 'docs.example', '/docs/a');
    const attacks = ['/docs/../admin/secrets', '/docs/..', '/docs/./a', '/docs/..;/admin', '/docs/%2e%2e/admin', '/docs/a%2Fb', '/docs\\..\\admin'];
    expect(attacks.length).toBeGreaterThan(0);
    for (const path of attacks) {
      expect(evaluateEgress(docsPolicy, { caller: web.caller, host: 'docs.example', port: 80, method: 'GET', path })).toMatchObject({ effect: 'ask', ruleId: 'docs-asks', judged: false });
      const asked = await expectAsked(approvals, gate(deps, web, to('docs.example', 80), { method: 'GET', path }));
      expect(asked.grantCovers).toMatch(/^nothing: rule "docs-asks" cannot judge this path/);
    }
    // Outside the rule's methods or path the grant covers nothing either: no rule matches, so egress is denied.
    expect(await gate(deps, web, to('docs.example', 80), { method: 'POST', path: '/docs/a' })).toMatchObject({ go: false, status: 403 });
    expect(await gate(deps, web, to('docs.example', 80), { method: 'GET', path: '/admin' })).toMatchObject({ go: false, status: 403 });
    expect(approvals.grants()).toEqual([expect.objectContaining({ id: g?.id, uses: 0 })]);
    // The grant as shown to the approver of the first request.
    expect(evaluateEgress(docsPolicy, { caller: web.caller, host: 'docs.example', port: 80, method: 'GET', path: '/docs/a' })).toMatchObject({ judged: true, http: { methods: ['GET', 'HEAD'], path: '/docs/**' } });
  });

  it('approving_an_unjudged_match_with_a_grant_is_refused', async () => {
    const { approvals, deps } = docsSetup();
    const v = gate(deps, web, to('docs.example', 80));
    const p = await pendingOne(approvals);
    await expect(approvals.approve(p.id, { by: 'alice', grant: HOUR })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringMatching(/no grant may be given.*tunnel \(CONNECT\).*Approve it without a grant/) });
    await expect(approvals.approve(p.id, { by: 'alice', session: true })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringMatching(/no grant may be given/) });
    // Refused, not decided: it is still pending and may be approved for this one connection.
    expect(approvals.get(p.id)).toBeDefined();
    const r = await approvals.approve(p.id, { by: 'alice' });
    expect(r.grant).toBeUndefined();
    expect((await v).go).toBe(true);
    expect(approvals.grants()).toEqual([]);
  });

  it('an_old_grant_without_the_tunnel_field_covers_nothing', async () => {
    // A grant saved before `tunnel` existed: whether it came from a CONNECT or a plain-HTTP approval is unknown.
    const dir = tempDir('gh-egress-ask-old-');
    const now = Date.now();
    const old = {
      id: 'gr_0123456789',
      agent: 'coder',
      ruleId: 'npm-asks',
      tool: 'registry.npmjs.org:443',
      by: 'alice',
      approvalId: 'ap_0123456789',
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + 3_600_000).toISOString(),
      maxUses: 50,
      uses: 0,
      egress: { caller: 'agent' as const, host: 'registry.npmjs.org', port: 443 },
    };
    await approvalStateIn(dir).save({ pending: [], grants: [old], withdrawn: [] });
    const { approvals, deps, events } = setup(dir);
    expect(events.find((e) => e.type === 'state_rejected')).toBeUndefined();
    // It still loads, lists and can be revoked; it just lets nothing through.
    expect(approvals.grants()).toEqual([expect.objectContaining({ id: old.id })]);
    await expectAsked(approvals, gate(deps, coder, to('registry.npmjs.org')));
    await expectAsked(approvals, gate(deps, coder, to('registry.npmjs.org'), { method: 'GET', path: '/x' }));
    expect(approvals.grants()[0]).toMatchObject({ id: old.id, uses: 0 });
  });
});
