import { userInfo } from 'node:os';
import { requireDuration } from '../config/duration.js';
import { Exit, GatehouseError } from '../errors.js';
import type { Grant, PendingApproval, WithdrawnApproval } from '../policy/approvals.js';
import { egressAction } from '../policy/egress-ask.js';
import { approvalSubject, grantTarget, whoCell } from './approval-text.js';
import { addWatchSubcommand } from './approvals-watch.js';
import { adminRequest } from '../server/control-client.js';
import { dirsFrom, handle, subcommand, table, type CommandModule } from './command.js';
import { esc, escapeText, jsonLine, jsonText } from '../terminal.js';

const PREVIEW = 60;

/** The start of the arguments for a table cell; `approvals show` prints them whole. */
function shortArgs(args: Record<string, unknown>): string {
  const s = JSON.stringify(args);
  return s.length > PREVIEW ? `${s.slice(0, PREVIEW - 3)}...` : s;
}

/** An egress approval whole: who, the request, and where it came from (it has no arguments). */
function showEgress(p: PendingApproval & { egress: NonNullable<PendingApproval['egress']> }): string {
  const e = p.egress;
  const rows: [string, string][] = [
    [e.caller.kind, e.caller.name],
    ['wants', egressAction(e)],
    ['host', e.host],
    ['port', String(e.port)],
    ...(e.method !== undefined ? ([['method', e.method]] as [string, string][]) : []),
    ...(e.path !== undefined ? ([['path', e.path]] as [string, string][]) : []),
    ['sandbox', e.sandbox ?? '(none)'],
    ['rule', p.ruleId ?? '(default)'],
    ['grant', `a grant covers: ${grantCovers(p)}`],
    ['message', p.message],
    ['requested', p.requestedAt],
    ['expires', p.expiresAt],
  ];
  return esc`Egress approval ${p.id}: ${approvalSubject(p)}
` + rows.map(([k, v]) => `  ${k.padEnd(10)} ${escapeText(v)}
`).join('');
}

function showApproval(p: PendingApproval): string {
  if (p.egress !== undefined) return showEgress({ ...p, egress: p.egress });
  const rows: [string, string][] = [
    ['agent', p.agent],
    ['tool', `${p.tool} (connector ${p.connector}, upstream tool ${p.upstreamTool})`],
    ['rule', p.ruleId ?? '(default)'],
    ['message', p.message],
    ['requested', p.requestedAt],
    ['expires', p.expiresAt],
  ];
  return (
    esc`Approval ${p.id}\n` +
    rows.map(([k, v]) => `  ${k.padEnd(10)} ${escapeText(v)}\n`).join('') +
    // Exact JSON: every string is shown whole; escapes are JSON's, so it parses back to what the call will send.
    `Arguments (exact JSON; secret values appear as [REDACTED:NAME]):\n${jsonText(p.args, 2)}\n`
  );
}

/** What a grant given on this egress approval would cover, as the gateway worked it out. */
function grantCovers(p: PendingApproval): string {
  return p.grantCovers ?? '(not said by this gateway)';
}

const APPROVALS_HELP = `
Decides calls that policy sent to a human ("effect: ask"). A pending call
waits until approved, denied, or its timeout passes (then it is denied).
With --grant, later calls of the same agent, rule and tool pass without
asking until the grant expires or its uses run out (never more than the
rule's ask.grant allows). Talks to the running gateway over its control socket.
Egress connections wait here too ("agent coder wants CONNECT host:443"); a
grant for one covers the same caller, rule, host and port and the same kind of
request: a grant on a CONNECT covers CONNECT tunnels only, one on a plain-HTTP
request covers plain HTTP only, and only the methods and paths the rule names.
With --session it covers only the sandbox session it came from (without
--grant: as long and as many connections as the rule's ask.grant allows).
A request the rule cannot judge (a CONNECT under a rule naming a method or
path, a path with "..") is always asked and may be approved without a grant
only. "list" and "show" say what a grant would cover.
"list" shows the first characters of each call's arguments; "show ID" prints
all of them exactly, as JSON (secret values redacted).`;

interface DecideOptions {
  by?: string;
  json?: boolean;
}

function whoDecides(by: string | undefined): string {
  if (by !== undefined) return by;
  try {
    return userInfo().username;
  } catch {
    return 'admin';
  }
}

export const approvalsCommand: CommandModule = (program, io) => {
  const approvals = subcommand(program, 'approvals', 'list, approve and deny calls waiting for a human').addHelpText('after', APPROVALS_HELP);

  const list = subcommand(approvals, 'list', 'calls waiting for approval, grants, withdrawn calls').option('--json', 'machine-readable output');
  handle<{ json?: boolean }>(list, async (o) => {
    const dirs = dirsFrom(o, io.env);
    const r = (await adminRequest(dirs.state, 'GET', '/approvals')) as { pending: PendingApproval[]; grants: Grant[]; withdrawn?: WithdrawnApproval[] };
    if (o.json) {
      io.out(jsonLine(r));
      return Exit.Ok;
    }
    const calls = r.pending.filter((p) => p.egress === undefined);
    const conns = r.pending.filter((p) => p.egress !== undefined);
    if (r.pending.length === 0) io.out('No calls are waiting for approval.\n');
    else if (calls.length > 0) io.out(table(['ID', 'AGENT', 'TOOL', 'RULE', 'ARGS', 'EXPIRES'], calls.map((p) => [p.id, p.agent, p.tool, p.ruleId ?? '(default)', shortArgs(p.args), p.expiresAt])));
    if (conns.length > 0) {
      io.out(`${calls.length > 0 ? '\n' : ''}Egress connections waiting for approval:\n` + table(['ID', 'REQUEST', 'RULE', 'SANDBOX', 'EXPIRES', 'A GRANT COVERS'], conns.map((p) => [p.id, approvalSubject(p), p.ruleId ?? '(default)', p.egress?.sandbox ?? '-', p.expiresAt, grantCovers(p)])));
    }
    const cut = calls.find((p) => JSON.stringify(p.args).length > PREVIEW);
    if (cut) io.out(esc`\nARGS is truncated to ${PREVIEW} characters ("..."); see every argument exactly: gatehouse approvals show ${cut.id}\n`);
    if (r.grants.length > 0) {
      io.out('\nGrants:\n' + table(['ID', 'AGENT', 'TOOL', 'RULE', 'USED', 'EXPIRES', 'BY'], r.grants.map((g) => [g.id, whoCell(g), grantTarget(g), g.ruleId ?? '(default)', `${g.uses}/${g.maxUses}`, g.expiresAt, g.by])));
    }
    const gone = r.withdrawn ?? [];
    if (gone.length > 0) {
      io.out('\nWithdrawn (the caller is gone: nothing to approve):\n' + table(['ID', 'AGENT', 'TOOL', 'WITHDRAWN', 'REASON'], gone.map((w) => [w.id, whoCell(w), w.tool, w.withdrawnAt, w.reason])));
    }
    return Exit.Ok;
  });

  const show = subcommand(approvals, 'show <id>', "one pending call with all of its arguments, as exact JSON (secret values redacted)").option('--json', 'machine-readable output');
  handle<{ json?: boolean }>(show, async (o, [id]) => {
    const dirs = dirsFrom(o, io.env);
    const r = (await adminRequest(dirs.state, 'GET', '/approvals')) as { pending: PendingApproval[] };
    const p = r.pending.find((x) => x.id === id);
    if (!p) throw new GatehouseError('NOT_FOUND', esc`no pending approval ${id ?? ''}: it was decided, timed out or withdrawn (see: gatehouse logs --grep ${id ?? ''})`);
    io.out(o.json ? jsonLine(p) : showApproval(p));
    return Exit.Ok;
  });

  const approve = subcommand(approvals, 'approve <id>', 'let a pending call run (and, with --grant, later ones like it)')
    .option('--grant <duration>', 'also grant for this long (e.g. 30m, 1h30m)')
    .option('--uses <n>', 'with --grant: number of calls the grant covers (default 10)')
    .option('--session', "egress: the grant covers this sandbox session only (without --grant: as much as the rule's ask.grant allows)")
    .option('--by <name>', 'who decided (default: your user name), recorded in the audit log')
    .option('--json', 'machine-readable output');
  handle<DecideOptions & { grant?: string; uses?: string; session?: boolean }>(approve, async (o, [id]) => {
    if (o.uses !== undefined && o.grant === undefined) throw new GatehouseError('USAGE', '--uses needs --grant DURATION');
    const uses = Number(o.uses ?? '10');
    if (!Number.isInteger(uses) || uses < 1) throw new GatehouseError('USAGE', '--uses must be a whole number >= 1');
    // Checked here too, so a typo is named as the flag it came from before anything reaches the gateway.
    if (o.grant !== undefined) requireDuration(o.grant, '--grant');
    const dirs = dirsFrom(o, io.env);
    const body = { by: whoDecides(o.by), ...(o.grant !== undefined ? { grant: { ttl: o.grant, uses } } : {}), ...(o.session === true ? { session: true } : {}) };
    const r = (await adminRequest(dirs.state, 'POST', `/approvals/${encodeURIComponent(id ?? '')}/approve`, body)) as { approval: PendingApproval; grant?: Grant };
    if (o.json) io.out(jsonLine(r));
    else io.out(esc`approved ${r.approval.id} (${approvalSubject(r.approval)})` + (r.grant ? esc`; grant ${r.grant.id} for ${r.grant.maxUses} ${r.grant.egress ? 'connections' : 'calls'} until ${r.grant.expiresAt}` + (r.grant.egress?.sandbox !== undefined ? esc` (sandbox ${r.grant.egress.sandbox} only)` : '') : '') + '\n');
    return Exit.Ok;
  });

  const deny = subcommand(approvals, 'deny <id>', 'refuse a pending call')
    .option('--reason <text>', 'the reason the agent is shown')
    .option('--by <name>', 'who decided (default: your user name), recorded in the audit log')
    .option('--json', 'machine-readable output');
  handle<DecideOptions & { reason?: string }>(deny, async (o, [id]) => {
    const dirs = dirsFrom(o, io.env);
    const body = { by: whoDecides(o.by), ...(o.reason !== undefined ? { reason: o.reason } : {}) };
    const r = (await adminRequest(dirs.state, 'POST', `/approvals/${encodeURIComponent(id ?? '')}/deny`, body)) as { approval: PendingApproval };
    if (o.json) io.out(jsonLine(r));
    else io.out(esc`denied ${r.approval.id} (${approvalSubject(r.approval)})\n`);
    return Exit.Ok;
  });

  addWatchSubcommand(approvals, io);
};
