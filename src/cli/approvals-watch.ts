/**
 * `gatehouse approvals watch`: follows calls waiting for a human, one line
 * when a call starts waiting and one when it is decided, by polling the
 * running gateway's admin API (once a second).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Exit, GatehouseError } from '../errors.js';
import type { PendingApproval } from '../policy/approvals.js';
import { escapeText, jsonLine } from '../terminal.js';
import { approvalSubject } from './approval-text.js';
import { dirsFrom, handle, subcommand, type Command, type Io } from './command.js';
import { adminRequest } from '../server/control-client.js';
import { invocation } from './invocation.js';

/** GET on the admin API (adminRequest bound to a state directory; tests pass their own). */
export type AdminGet = (path: string) => Promise<unknown>;

export type Outcome = { outcome: 'approved'; by?: string } | { outcome: 'denied'; by?: string; reason?: string } | { outcome: 'timed out' } | { outcome: 'withdrawn'; reason?: string } | { outcome: 'decided' };

const OUTCOME_EVENTS: Record<string, Outcome['outcome']> = {
  'approval.approved': 'approved',
  'approval.denied': 'denied',
  'approval.timeout': 'timed out',
  'approval.withdrawn': 'withdrawn',
};

/** What became of a call that stopped waiting, from its audit record ("decided" when the record is not readable yet). */
export async function outcomeOf(get: AdminGet, id: string): Promise<Outcome | undefined> {
  let records: Array<Record<string, unknown>>;
  try {
    records = ((await get(`/audit?grep=${encodeURIComponent(id)}&limit=20`)) as { records: Array<Record<string, unknown>> }).records;
  } catch {
    return undefined;
  }
  const r = records.find((x) => x.approvalId === id && typeof x.event === 'string' && x.event in OUTCOME_EVENTS);
  if (!r) return undefined;
  const outcome = OUTCOME_EVENTS[r.event as string];
  const by = typeof r.by === 'string' ? { by: r.by } : {};
  const reason = typeof r.reason === 'string' ? { reason: r.reason } : {};
  if (outcome === 'approved') return { outcome, ...by };
  if (outcome === 'denied') return { outcome, ...by, ...reason };
  if (outcome === 'withdrawn') return { outcome, ...reason };
  return { outcome: 'timed out' };
}

export function waitingLine(p: PendingApproval, cli: string, now: Date): string {
  return escapeText(`${now.toISOString()} waiting  ${p.id}  ${approvalSubject(p)}  rule ${p.ruleId ?? '(default)'}, expires ${p.expiresAt}  approve: ${cli} approvals approve ${p.id}  deny: ${cli} approvals deny ${p.id}`) + '\n';
}

export function decidedLine(p: PendingApproval, o: Outcome, now: Date): string {
  const detail =
    o.outcome === 'approved' && o.by !== undefined ? ` by ${o.by}` : o.outcome === 'denied' ? `${o.by !== undefined ? ` by ${o.by}` : ''}${o.reason !== undefined ? `: ${o.reason}` : ''}` : o.outcome === 'withdrawn' && o.reason !== undefined ? `: ${o.reason}` : o.outcome === 'decided' ? ` (see: gatehouse logs --grep ${p.id})` : '';
  return escapeText(`${now.toISOString()} ${o.outcome.padEnd(8)} ${p.id}  ${approvalSubject(p)}${detail}`) + '\n';
}

export interface WatchOptions {
  json: boolean;
  cli: string;
  out: (s: string) => void;
  err: (s: string) => void;
  signal: AbortSignal;
  intervalMs?: number;
  /** Polls to wait for a decided call's audit record before printing "decided" without the outcome. */
  outcomeTries?: number;
}

/**
 * Polls until `signal` aborts (Ctrl-C: exit 0) or the gateway goes away
 * (exit 0 after saying so; exit 3 when none ran to begin with).
 */
export async function watchApprovals(get: AdminGet, o: WatchOptions): Promise<number> {
  const interval = o.intervalMs ?? 1000;
  const tries = o.outcomeTries ?? 3;
  const known = new Map<string, PendingApproval>();
  /** Calls that stopped waiting whose outcome is not in the audit log yet: polls left. */
  const ending = new Map<string, { p: PendingApproval; left: number }>();
  let first = true;
  const emitWaiting = (p: PendingApproval) => o.out(o.json ? jsonLine({ event: 'waiting', time: new Date().toISOString(), approval: p }) : waitingLine(p, o.cli, new Date()));
  const emitDecided = (p: PendingApproval, r: Outcome) =>
    o.out(o.json ? jsonLine({ event: 'decided', time: new Date().toISOString(), id: p.id, agent: p.agent, tool: p.tool, ...(p.egress !== undefined ? { egress: p.egress } : {}), ...r }) : decidedLine(p, r, new Date()));
  while (!o.signal.aborted) {
    let pending: PendingApproval[];
    try {
      pending = ((await get('/approvals')) as { pending: PendingApproval[] }).pending;
    } catch (e) {
      if (first || !(e instanceof GatehouseError) || e.code !== 'GATEWAY_UNAVAILABLE') throw e;
      o.err('the gateway stopped; nothing more to watch\n');
      return Exit.Ok;
    }
    if (first && !o.json) o.out(pending.length === 0 ? 'No calls are waiting for approval; watching for new ones (Ctrl-C stops).\n' : 'Watching calls that wait for approval (Ctrl-C stops).\n');
    first = false;
    const now = new Set(pending.map((p) => p.id));
    for (const p of pending) {
      if (known.has(p.id)) continue;
      known.set(p.id, p);
      emitWaiting(p);
    }
    for (const [id, p] of known) {
      if (now.has(id)) continue;
      known.delete(id);
      ending.set(id, { p, left: tries });
    }
    for (const [id, e] of ending) {
      const r = await outcomeOf(get, id);
      e.left--;
      if (r === undefined && e.left > 0) continue;
      ending.delete(id);
      emitDecided(e.p, r ?? { outcome: 'decided' });
    }
    await sleep(interval, undefined, { signal: o.signal }).catch(() => undefined);
  }
  return Exit.Ok;
}

/** Adds `gatehouse approvals watch` under the approvals command. */
export function addWatchSubcommand(approvals: Command, io: Io): void {
  const watch = subcommand(approvals, 'watch', 'follow calls as they start waiting for approval and as they are decided')
    .description('Prints one line when a call starts waiting for approval (with the commands that decide it)\nand one when it is decided. Ends on Ctrl-C or when the gateway stops.')
    .option('--json', 'one JSON object per line: {"event":"waiting",...} or {"event":"decided",...}');
  handle<{ json?: boolean }>(watch, async (o) => {
    const state = dirsFrom(o, io.env).state;
    const stop = new AbortController();
    const onSigint = () => stop.abort();
    process.once('SIGINT', onSigint);
    try {
      return await watchApprovals((path) => adminRequest(state, 'GET', path), { json: o.json === true, cli: invocation(), out: io.out, err: io.err, signal: stop.signal });
    } finally {
      process.off('SIGINT', onSigint);
    }
  });
}
