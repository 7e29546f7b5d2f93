/**
 * Every record kind the gateway writes, as OCSF: valid for its class
 * (required attributes, object constraints, no attribute the class lacks;
 * see ocsf-schema.ts, written from the OCSF 1.6.0 schema files), in the
 * class the README names, and losing nothing of the record (what has no
 * OCSF attribute is in `unmapped`).
 */
import { describe, expect, it } from 'vitest';
import { EVENTS } from '../../../src/audit/filter.js';
import type { AuditRecord } from '../../../src/audit/types.js';
import { OCSF_CLASSES, OCSF_VERSION, ocsfClassOf, toOcsf, type OcsfClass } from '../../../src/telemetry/siem/ocsf.js';
import { ocsfProblems } from './ocsf-schema.js';

let seq = 0;
function rec(event: string, fields: Record<string, unknown> = {}): AuditRecord {
  seq++;
  return { v: 1, seq, time: `2025-01-06T10:02:${String(seq % 60).padStart(2, '0')}.482Z`, event, prev: '0'.repeat(64), hash: seq.toString(16).padStart(64, 'a'), ...fields } as AuditRecord;
}

const call = { agent: 'laptop-claude', session: 'b3c1', call: 'c-1', connector: 'github', tool: 'github__create_issue', upstreamTool: 'create_issue', args: { repo: 'acme/web', title: 'Fix login' } };

/** One record per event, shaped as the gateway writes it (fields as in src/: pipeline, egress/gate, mcp-sessions, pins, …). */
export const SAMPLES: AuditRecord[] = [
  rec('gateway.start', { version: '0.1.0', connectors: ['github'], policyDigest: 'abc' }),
  rec('gateway.stop'),
  rec('session.opened', { agent: 'laptop-claude', session: 'b3c1', via: 'token' }),
  rec('session.closed', { agent: 'laptop-claude', session: 'b3c1', reason: 'idle' }),
  rec('session.refused', { agent: 'laptop-claude', via: 'sandbox', sandbox: 'sb-1', limit: 8, scope: 'agent', open: 8 }),
  rec('tools/list', { agent: 'laptop-claude', session: 'b3c1', count: 12 }),
  rec('tools/call.intent', { ...call, decision: 'allow', rule: 'allow-issues' }),
  rec('tools/call', { ...call, decision: 'allow', rule: 'allow-issues', outcome: 'ok', upstreamMs: 208, resultBytes: 1832, durationMs: 212.4 }),
  rec('tools/call', { ...call, call: undefined, decision: 'deny', rule: 'no-github', outcome: 'denied', error: { code: 'POLICY_DENIED', message: 'no' }, durationMs: 0.4 }),
  rec('tools/call', { agent: 'mallory', session: 's2', tool: 'nope__x', outcome: 'rejected', error: { code: 'TOOL_UNKNOWN', message: 'unknown tool' }, durationMs: 0.1 }),
  rec('approval.requested', { agent: 'laptop-claude', approvalId: 'ap-1', tool: 'github__merge', rule: 'ask-merge', args: {}, expiresAt: '2025-01-06T10:10:00.000Z' }),
  rec('approval.approved', { agent: 'laptop-claude', approvalId: 'ap-1', tool: 'github__merge', rule: 'ask-merge', by: 'console' }),
  rec('approval.denied', { agent: 'laptop-claude', approvalId: 'ap-1', tool: 'github__merge', rule: 'ask-merge', by: 'cli', reason: 'not now' }),
  rec('approval.timeout', { agent: 'laptop-claude', approvalId: 'ap-1', tool: 'github__merge', rule: 'ask-merge' }),
  rec('approval.withdrawn', { agent: 'laptop-claude', approvalId: 'ap-1', tool: 'github__merge', rule: 'ask-merge', reason: 'the caller is gone' }),
  rec('approvals.state', { ok: false, file: '/s/approvals.json', error: 'bad json', effect: 'started with no grants' }),
  rec('approval.refused', { agent: 'laptop-claude', tool: 'github__merge', rule: 'ask-merge', reason: 'too many pending' }),
  rec('grant.used', { agent: 'laptop-claude', tool: 'github__merge', grantId: 'g-1', uses: 1, maxUses: 3 }),
  rec('grant.expired', { agent: 'laptop-claude', tool: 'github__merge', grantId: 'g-1', reason: 'ttl' }),
  rec('policy.reload', { ok: false, files: ['a.yaml'], changed: ['a.yaml'], digest: 'd', error: 'a.yaml:3:1: rules[0].effect: invalid' }),
  rec('registry.reload', { ok: true, dir: '/r', connectors: [{ name: 'github', kind: 'github', file: '/r/github.yaml' }] }),
  rec('token.revoked', { jti: 'j-1', revokedAt: '2025-01-06T10:00:00.000Z', via: 'cli' }),
  rec('token.revocations', { ok: true, tokens: 1, agents: 0 }),
  rec('secret.set', { name: 'github-token', via: 'cli' }),
  rec('secret.delete', { name: 'github-token', via: 'cli' }),
  rec('sandbox.opened', { agent: 'laptop-claude', sandbox: 'sb-1', port: 40111, egress: false }),
  rec('sandbox.closed', { agent: 'laptop-claude', sandbox: 'sb-1' }),
  rec('sampling.request', { agent: 'laptop-claude', session: 'b3c1', connector: 'everything', outcome: 'rejected', reason: 'sampling is off' }),
  rec('elicitation.request', { agent: 'laptop-claude', session: 'b3c1', connector: 'everything', outcome: 'rejected' }),
  rec('audit.checkpoint', { checkpoint: { seq: 3, hash: 'h', time: 't' }, kid: 'k', jws: 'x.y.z' }),
  rec('audit.recovered', { reason: 'torn-last-line', torn: { file: 'audit.jsonl', offset: 10, length: 3, movedTo: 'audit.jsonl.torn-3' } }),
  rec('audit.retention', { deleted: [{ file: 'audit.000000000001.jsonl', firstSeq: 1, bytes: 10 }], keptFromSeq: 5, keptFromPrev: 'p' }),
  rec('audit.headroom', { state: 'low', freeBytes: 1, headroomBytes: 2, filesystem: '/' }),
  rec('egress.intent', { conn: 'e-1', agent: 'laptop-claude', sandbox: 'sb-1', host: 'api.github.com', port: 443, decision: 'allow', rule: 'gh', addresses: ['140.82.112.6'] }),
  rec('egress', { conn: 'e-1', agent: 'laptop-claude', sandbox: 'sb-1', host: 'api.github.com', port: 443, decision: 'allow', rule: 'gh', addresses: ['140.82.112.6'], address: '140.82.112.6', outcome: 'closed', bytesUp: 100, bytesDown: 2000, durationMs: 300 }),
  rec('egress', { conn: 'e-2', connector: 'fetch', host: '10.0.0.1', port: 80, method: 'GET', path: '/x', decision: 'allow', rule: 'any', outcome: 'address-refused', reason: '10.0.0.1 is private', durationMs: 1 }),
  rec('egress', { conn: 'e-3', agent: 'mallory', host: 'evil.example', port: 443, decision: 'deny', rule: null, outcome: 'denied', reason: 'no rule', durationMs: 0.2 }),
  rec('egress', { agent: 'mallory', outcome: 'suppressed', count: 40, windowMs: 1000, hosts: ['a'], reason: 'folded' }),
  rec('egress', { conn: 'e-4', agent: 'laptop-claude', host: 'down.example', port: 443, decision: 'allow', rule: 'x', outcome: 'connect-failed', reason: 'ECONNREFUSED', durationMs: 2 }),
  rec('tool.pinned', { connector: 'github', tool: 'create_issue', toolHash: 'th1' }),
  rec('tool.quarantined', { connector: 'github', tool: 'create_issue', toolHash: 'th2', previousHash: 'th1', reasons: ['description changed'], diff: '-a\n+b', findings: [{ kind: 'addressed-to-model', where: 'description', excerpt: 'ignore previous' }] }),
  rec('tool.changed', { connector: 'github', tool: 'create_issue', toolHash: 'th2', previousHash: 'th1', reasons: ['schema changed'], diff: '…' }),
  rec('tool.approved', { connector: 'github', tool: 'create_issue', by: 'console', toolHash: 'th2', previousHash: 'th1', diff: '…' }),
  rec('tool.removed', { connector: 'github', tool: 'create_issue', toolHash: 'th2' }),
  rec('tool.pins_rejected', { connector: 'github', reasons: ['pin file unreadable: EACCES'] }),
  rec('console.login_issued', { expiresAt: '2025-01-06T10:05:00.000Z' }),
  rec('console.login', { consoleSession: 'cs-1' }),
  rec('console.logout', { consoleSession: 'cs-1' }),
  rec('model.call.intent', { call: 'm-1', agent: 'laptop-claude', provider: 'anthropic', connector: 'anthropic', method: 'POST', path: '/v1/messages', via: 'sandbox', sandbox: 'sb-1', api: 'anthropic', model: 'claude-x', stream: true, bytesIn: 100, decision: 'allow', rule: 'models' }),
  rec('model.call', { call: 'm-1', agent: 'laptop-claude', provider: 'anthropic', connector: 'anthropic', method: 'POST', path: '/v1/messages', via: 'token', model: 'claude-x', decision: 'allow', rule: 'models', outcome: 'ok', inputTokens: 10, outputTokens: 20, responseModel: 'claude-x-1', ttfbMs: 5, durationMs: 50, bytesOut: 300 }),
  rec('model.call', { call: 'm-2', agent: 'mallory', provider: 'openai', connector: 'openai', method: 'GET', path: '/v1/models', via: 'token', decision: 'deny', rule: null, outcome: 'refused', status: 403, reason: 'no model rule' }),
];

/** The class the README maps each kind to. */
const EXPECTED: Record<string, OcsfClass> = {
  'tools/call': 'api_activity',
  'model.call': 'api_activity',
  egress: 'network_activity',
  'egress.intent': 'network_activity',
  'session.opened': 'authentication',
  'console.login': 'authentication',
  'tool.quarantined': 'detection_finding',
  'tool.changed': 'detection_finding',
  'gateway.start': 'application_lifecycle',
};

const opts = { productVersion: '9.9.9' };

describe('OCSF mapping of audit records', () => {
  it('the samples cover every event the gateway writes (a guard: the list under test is not empty and not stale)', () => {
    const covered = new Set(SAMPLES.map((r) => r.event));
    expect(EVENTS.length).toBeGreaterThan(40);
    expect(EVENTS.filter((e) => !covered.has(e))).toEqual([]);
  });

  it.each(SAMPLES.map((r) => [`${r.event} #${r.seq}`, r] as const))('%s is a valid OCSF 1.6.0 event of its class', (_, r) => {
    const e = toOcsf(r, opts);
    const cls = ocsfClassOf(r.event);
    expect(ocsfProblems(e, cls)).toEqual([]);
    expect(e.class_uid).toBe(OCSF_CLASSES[cls].uid);
    expect(e.time).toBe(Date.parse(r.time));
    expect(e.metadata).toMatchObject({ version: OCSF_VERSION, uid: r.hash, sequence: r.seq, event_code: r.event, product: { name: 'Gatehouse', version: '9.9.9' } });
    // Plain JSON (what a sink sends) round-trips.
    expect(JSON.parse(JSON.stringify(e))).toEqual(e);
  });

  it('maps each kind to the class the README names: tool and model calls → API Activity 6003, egress → Network Activity 4001, token use → Authentication 3002, pin and screening events → Detection Finding 2004', () => {
    for (const [event, cls] of Object.entries(EXPECTED)) expect([event, ocsfClassOf(event)]).toEqual([event, cls]);
    const uids = Object.fromEntries(SAMPLES.map((r) => [r.event, toOcsf(r, opts).class_uid]));
    expect(uids).toMatchObject({ 'tools/call': 6003, 'model.call': 6003, egress: 4001, 'session.opened': 3002, 'tool.quarantined': 2004, 'tool.changed': 2004 });
  });

  it('a tool call: who, what, decision and outcome in their OCSF places', () => {
    const r = SAMPLES.find((x) => x.event === 'tools/call' && x.outcome === 'ok') as AuditRecord;
    const e = toOcsf(r, opts);
    expect(e).toMatchObject({
      activity_id: 99,
      activity_name: 'Invoke',
      type_uid: 600399,
      status_id: 1,
      actor: { user: { name: 'laptop-claude', type_id: 4 }, session: { uid: 'b3c1' } },
      api: { operation: 'tools/call', service: { name: 'github' }, request: { uid: 'c-1', data: { args: { repo: 'acme/web', title: 'Fix login' } } } },
      resources: [{ name: 'github__create_issue', uid: 'create_issue', type: 'MCP Tool' }],
      action_id: 1,
      disposition_id: 1,
      policy: { uid: 'allow-issues', name: 'allow-issues' },
      duration: 212,
      metadata: { profiles: ['security_control'], correlation_uid: 'c-1' },
      unmapped: { upstreamMs: 208, resultBytes: 1832, prev: '0'.repeat(64) },
    });
  });

  it('a denied call is Blocked with the error as status, and a refused model call is a failure with its HTTP status', () => {
    const denied = toOcsf(SAMPLES.find((x) => x.outcome === 'denied') as AuditRecord, opts);
    expect(denied).toMatchObject({ status_id: 2, status_code: 'POLICY_DENIED', status_detail: 'no', disposition_id: 2, action_id: 2, severity_id: 3 });
    expect((denied.api as { request: { uid: string } }).request.uid).toBe(denied.metadata.uid); // no call id: the record's hash
    const refused = toOcsf(SAMPLES.find((x) => x.event === 'model.call' && x.outcome === 'refused') as AuditRecord, opts);
    expect(refused).toMatchObject({ activity_id: 2, status_id: 2, api: { operation: 'GET /v1/models', response: { code: 403 } } });
  });

  it('an intent alone is status Unknown (the call may or may not have run)', () => {
    const e = toOcsf(SAMPLES.find((x) => x.event === 'tools/call.intent') as AuditRecord, opts);
    expect(e.status_id).toBe(0);
  });

  it('egress: a finished tunnel is Close with its bytes, a refusal is Refuse, a failed connect is Fail', () => {
    const [closed, refusedAddr, denied, , failed] = SAMPLES.filter((x) => x.event === 'egress').map((r) => toOcsf(r, opts));
    expect(closed).toMatchObject({ activity_id: 2, status_id: 1, dst_endpoint: { hostname: 'api.github.com', port: 443, ip: '140.82.112.6' }, traffic: { bytes_out: 100, bytes_in: 2000, bytes: 2100 }, connection_info: { direction_id: 2, uid: 'e-1' } });
    expect(refusedAddr).toMatchObject({ activity_id: 5, status_id: 2, severity_id: 3, url: { path: '/x' }, unmapped: { method: 'GET' } });
    expect(denied).toMatchObject({ activity_id: 5, action_id: 2, disposition_id: 2 });
    expect(failed).toMatchObject({ activity_id: 4, status_id: 2 });
  });

  it('pin events are findings: a quarantine and its approval name the same finding, screening findings are evidence', () => {
    const q = toOcsf(SAMPLES.find((x) => x.event === 'tool.quarantined') as AuditRecord, opts);
    const a = toOcsf(SAMPLES.find((x) => x.event === 'tool.approved') as AuditRecord, opts);
    expect(q).toMatchObject({ activity_id: 1, is_alert: true, status_id: 1, severity_id: 4, evidences: [{ data: { kind: 'addressed-to-model' } }] });
    expect(a).toMatchObject({ activity_id: 3, status_id: 4, is_alert: false });
    expect((q.finding_info as { uid: string }).uid).toBe((a.finding_info as { uid: string }).uid);
  });

  it('a field the mapping does not know lands in unmapped under its own name (nothing of a record is lost)', () => {
    const e = toOcsf(rec('tools/call', { ...call, outcome: 'ok', somethingNew: { x: 1 } }), opts);
    expect(e.unmapped).toMatchObject({ somethingNew: { x: 1 } });
    const unknown = toOcsf(rec('brand.new', { agent: 'a', detail: 'd' }), opts);
    expect(ocsfProblems(unknown, 'api_activity')).toEqual([]);
    expect(unknown).toMatchObject({ class_uid: 6003, activity_id: 99, api: { operation: 'brand.new' }, unmapped: { detail: 'd' } });
  });

  it('hostile field values (wrong types, huge, control characters) never break the mapping', () => {
    const e = toOcsf(rec('tools/call', { agent: 42, session: ['x'], tool: { a: 1 }, outcome: 7, error: 'boom\n\u0000', durationMs: 'NaN', decision: 'maybe', args: 'a'.repeat(70_000) }), opts);
    expect(ocsfProblems(e, 'api_activity')).toEqual([]);
    expect(e.unmapped).toMatchObject({ agent: 42, session: ['x'], tool: { a: 1 }, outcome: 7, durationMs: 'NaN', decision: 'maybe' });
  });
});
