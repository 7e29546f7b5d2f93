/**
 * The OCSF mapping never drops a field of a record silently: every value a
 * record holds is somewhere in its event (in its OCSF place, or in
 * `unmapped`). Records shaped as the gateway writes them (src/policy/
 * approval-audit.ts, src/egress/tunnel.ts, …), plus the shapes the mapping
 * reads from more than one field.
 */
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../../src/audit/types.js';
import { ocsfClassOf, toOcsf } from '../../../src/telemetry/siem/ocsf.js';
import { ocsfProblems } from './ocsf-schema.js';

let seq = 0;
function rec(event: string, fields: Record<string, unknown>): AuditRecord {
  seq++;
  return { v: 1, seq, time: '2025-01-06T10:02:00.482Z', event, prev: '0'.repeat(64), hash: seq.toString(16).padStart(64, 'a'), ...fields } as AuditRecord;
}

/** Every primitive value in `v` (strings, numbers, booleans), deep. */
function values(v: unknown, out: unknown[] = []): unknown[] {
  if (v !== null && typeof v === 'object') for (const x of Object.values(v)) values(x, out);
  else if (v !== undefined && v !== null) out.push(v);
  return out;
}

/** Values of `r` that appear nowhere in its OCSF event. */
function dropped(r: AuditRecord): string[] {
  const e = toOcsf(r, { productVersion: 't' });
  const have = new Set(values(e).map((x) => JSON.stringify(x)));
  const out: string[] = [];
  for (const [k, v] of Object.entries(r)) {
    // A policy decision is translated (allow → action Allowed, deny → Denied, ask → Ask), not copied.
    if (k === 'decision' && e.action !== undefined) continue;
    // The record format's version is metadata.log_version (gatehouse-audit/1).
    if (k === 'v') continue;
    for (const x of values(v)) if (!have.has(JSON.stringify(x))) out.push(`${k}: ${JSON.stringify(x)}`);
  }
  return out;
}

describe('OCSF mapping: no field of a record is dropped', () => {
  it.each([
    // The admin who decided an approval, beside the agent whose call it was (src/policy/approval-audit.ts).
    ['who approved an approval (by) is kept beside the agent', rec('approval.approved', { agent: 'laptop-claude', approvalId: 'ap-1', tool: 'github__merge', rule: 'ask-merge', by: 'alice@console' })],
    ['who denied an approval (by) and why are kept beside the agent', rec('approval.denied', { agent: 'laptop-claude', approvalId: 'ap-1', tool: 'github__merge', rule: 'ask-merge', by: 'bob@cli', reason: 'not now' })],
    // How a tunnel ended: closed by a side, or cut as idle (src/egress/tunnel.ts).
    ['an egress tunnel cut as idle says idle', rec('egress', { conn: 'e-1', agent: 'a', host: 'h.example', port: 443, decision: 'allow', rule: 'r', outcome: 'idle', bytesUp: 1, bytesDown: 2, durationMs: 3 })],
    ['an egress tunnel closed says closed', rec('egress', { conn: 'e-2', agent: 'a', host: 'h.example', port: 443, decision: 'allow', rule: 'r', outcome: 'closed', bytesUp: 1, bytesDown: 2, durationMs: 3 })],
    // An error with more than code and message, and a reason beside an error message.
    // A call cancelled by the agent and one that failed both carry the upstream's error code: the outcome tells them apart.
    ['a cancelled call says cancelled beside its error code', rec('tools/call', { agent: 'a', session: 's', connector: 'c', tool: 'c__t', call: 'c-1', decision: 'allow', rule: 'r', outcome: 'cancelled', error: { code: 'UPSTREAM_ERROR', message: 'aborted' }, durationMs: 1 })],
    ['an error object keeps every field, and a reason beside its message', rec('tools/call', { agent: 'a', session: 's', connector: 'c', tool: 'c__t', outcome: 'error', error: { code: 'X', message: 'm', data: { bytes: 12, limit: 10 } }, reason: 'the upstream said so' })],
  ])('%s', (_, r) => {
    expect(dropped(r)).toEqual([]);
    expect(ocsfProblems(toOcsf(r, { productVersion: 't' }), ocsfClassOf(r.event))).toEqual([]);
  });
});
