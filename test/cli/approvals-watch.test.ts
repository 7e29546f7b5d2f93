import { describe, expect, it } from 'vitest';
import { watchApprovals, type AdminGet } from '../../src/cli/approvals-watch.js';
import { GatehouseError } from '../../src/errors.js';
import type { PendingApproval } from '../../src/policy/approvals.js';

function approval(id: string, extra: Partial<PendingApproval> = {}): PendingApproval {
  return { id, agent: 'laptop-claude', connector: 'gh', tool: 'gh__create_issue', upstreamTool: 'create_issue', ruleId: 'writes-ask', message: 'm', args: {}, requestedAt: '2026-01-01T00:00:00Z', expiresAt: '2026-01-01T00:05:00Z', ...extra };
}

/**
 * A scripted gateway: each poll of /approvals returns the next list of pending
 * calls; after the script the gateway is gone. Audit lookups answer from `audit`.
 */
function scripted(polls: PendingApproval[][], audit: Array<Record<string, unknown>> = []): { get: AdminGet; paths: string[] } {
  const paths: string[] = [];
  let i = 0;
  return {
    paths,
    get: async (path) => {
      paths.push(path);
      if (path.startsWith('/audit')) return { records: audit };
      const p = polls[i++];
      if (p === undefined) throw new GatehouseError('GATEWAY_UNAVAILABLE', 'no gateway is running');
      return { pending: p };
    },
  };
}

async function watch(get: AdminGet, json = false, outcomeTries = 2) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await watchApprovals(get, { json, cli: 'gatehouse', out: (s) => void out.push(s), err: (s) => void err.push(s), signal: new AbortController().signal, intervalMs: 1, outcomeTries });
  return { code, out: out.join(''), lines: out, err: err.join('') };
}

describe('gatehouse approvals watch', () => {
  it('prints one line when a call starts waiting (with the commands that decide it) and one when it is decided, with the outcome', async () => {
    const a = approval('ap-1');
    const s = scripted([[], [a], [a], []], [{ event: 'approval.approved', approvalId: 'ap-1', by: 'alice' }]);
    const r = await watch(s.get);
    expect(r.code).toBe(0);
    const waiting = r.lines.filter((l) => /Z waiting /.test(l));
    expect(waiting).toHaveLength(1);
    expect(waiting[0]).toMatch(/ap-1 {2}laptop-claude → gh__create_issue .*approve: gatehouse approvals approve ap-1 {2}deny: gatehouse approvals deny ap-1\n$/);
    expect(r.out).toMatch(/approved ap-1 {2}laptop-claude → gh__create_issue by alice\n/);
    expect(r.err).toMatch(/the gateway stopped/);
  });

  it('denied, timed out and withdrawn calls say so (and why)', async () => {
    const [a, b, c] = [approval('d-1'), approval('t-1'), approval('w-1')];
    const s = scripted(
      [[a, b, c], []],
      [
        { event: 'approval.denied', approvalId: 'd-1', by: 'bob', reason: 'not today' },
        { event: 'approval.timeout', approvalId: 't-1' },
        { event: 'approval.withdrawn', approvalId: 'w-1', reason: 'the caller disconnected' },
      ],
    );
    const r = await watch(s.get);
    expect(r.out).toMatch(/denied {3}d-1 .* by bob: not today\n/);
    expect(r.out).toMatch(/timed out t-1 /);
    expect(r.out).toMatch(/withdrawn w-1 .*: the caller disconnected\n/);
  });

  it('a decision whose audit record cannot be found yet still ends with a "decided" line pointing at the log', async () => {
    const r = await watch(scripted([[approval('x-1')], [], [], []]).get);
    expect(r.out).toMatch(/decided {2}x-1 .*\(see: gatehouse logs --grep x-1\)\n/);
  });

  it('--json: one object per line, waiting then decided', async () => {
    const s = scripted([[approval('j-1')], []], [{ event: 'approval.approved', approvalId: 'j-1', by: 'alice' }]);
    const r = await watch(s.get, true);
    const objs = r.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objs.map((o) => o.event)).toEqual(['waiting', 'decided']);
    expect((objs[0]?.approval as PendingApproval).id).toBe('j-1');
    expect(objs[1]).toMatchObject({ id: 'j-1', outcome: 'approved', by: 'alice', agent: 'laptop-claude' });
    expect(r.lines.every((l) => l.endsWith('\n') && l.indexOf('\n') === l.length - 1)).toBe(true);
  });

  it('no gateway at the start is an error (exit 3 through GATEWAY_UNAVAILABLE), not an empty watch', async () => {
    await expect(watch(scripted([]).get)).rejects.toMatchObject({ code: 'GATEWAY_UNAVAILABLE' });
  });

  it('Ctrl-C (the signal) ends the watch with exit 0', async () => {
    const stop = new AbortController();
    let polls = 0;
    const get: AdminGet = async () => {
      if (++polls === 3) stop.abort();
      return { pending: [] };
    };
    const code = await watchApprovals(get, { json: false, cli: 'gatehouse', out: () => undefined, err: () => undefined, signal: stop.signal, intervalMs: 1 });
    expect(code).toBe(0);
    expect(polls).toBe(3);
  });

  it('terminal injection: a tool name or agent with control characters or a newline cannot forge a line', async () => {
    const evil = approval('e-1', { tool: 'x\n2026-01-01T00:00:00Z approved e-1 \u001b[2J', agent: 'a\rb' });
    const r = await watch(scripted([[evil], []], [{ event: 'approval.denied', approvalId: 'e-1', reason: 'no\nforged line' }]).get);
    for (const l of r.lines) {
      expect(l.indexOf('\n')).toBe(l.length - 1);
      expect(l).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
    }
  });
});
