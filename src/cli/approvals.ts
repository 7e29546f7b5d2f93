import { userInfo } from 'node:os';
import { GatehouseError } from '../errors.js';
import type { Grant, PendingApproval, WithdrawnApproval } from '../policy/approvals.js';
import { adminRequest } from './control-client.js';
import { Exit, parse, table, type Command } from './command.js';
import { DIR_HELP, dirOptions, dirsFrom } from './dirs.js';
import { esc, escapeText, jsonLine, jsonText } from '../terminal.js';

const HELP = `Usage:
  gatehouse approvals list [--json]
  gatehouse approvals show ID [--json]
  gatehouse approvals approve ID [--grant DUR --uses N] [--by NAME]
  gatehouse approvals deny ID [--reason TEXT] [--by NAME]

Decides calls that policy sent to a human ("effect: ask"). A pending call
waits until approved, denied, or its timeout passes (then it is denied).
With --grant, later calls of the same agent, rule and tool pass without
asking until the grant expires or its uses run out (never more than the
rule's ask.grant allows). Talks to the running gateway over its control socket.
"list" shows the first characters of each call's arguments; "show ID" prints
all of them exactly, as JSON (secret values redacted).

Options:
  --grant DUR        also grant for this long (e.g. 30m, 1h)
  --uses N           with --grant: number of calls the grant covers (default 10)
  --by NAME          who decided (default: your user name), recorded in the audit log
  --reason TEXT      with deny: the reason the agent is shown
  --json             machine-readable output
${DIR_HELP}
  -h, --help         this help
`;

const PREVIEW = 60;

/** The start of the arguments for a table cell; `approvals show` prints them whole. */
function shortArgs(args: Record<string, unknown>): string {
  const s = JSON.stringify(args);
  return s.length > PREVIEW ? `${s.slice(0, PREVIEW - 3)}...` : s;
}

function showApproval(p: PendingApproval): string {
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

export const approvalsCommand: Command = {
  name: 'approvals',
  summary: 'list, approve and deny calls waiting for a human',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parse(
      argv,
      {
        ...dirOptions,
        json: { type: 'boolean' },
        grant: { type: 'string' },
        uses: { type: 'string' },
        by: { type: 'string' },
        reason: { type: 'string' },
      },
      true,
    );
    const [sub, id] = positionals;
    if (values.help || sub === undefined) {
      io.out(HELP);
      return values.help ? Exit.Ok : Exit.Usage;
    }
    const dirs = dirsFrom(values, io.env);
    const by = values.by ?? (() => { try { return userInfo().username; } catch { return 'admin'; } })();
    if (sub === 'list') {
      const r = (await adminRequest(dirs.state, 'GET', '/approvals')) as { pending: PendingApproval[]; grants: Grant[]; withdrawn?: WithdrawnApproval[] };
      if (values.json) {
        io.out(jsonLine(r));
        return Exit.Ok;
      }
      if (r.pending.length === 0) io.out('No calls are waiting for approval.\n');
      else io.out(table(['ID', 'AGENT', 'TOOL', 'RULE', 'ARGS', 'EXPIRES'], r.pending.map((p) => [p.id, p.agent, p.tool, p.ruleId ?? '(default)', shortArgs(p.args), p.expiresAt])));
      const cut = r.pending.find((p) => JSON.stringify(p.args).length > PREVIEW);
      if (cut) io.out(esc`\nARGS is truncated to ${PREVIEW} characters ("..."); see every argument exactly: gatehouse approvals show ${cut.id}\n`);
      if (r.grants.length > 0) {
        io.out('\nGrants:\n' + table(['ID', 'AGENT', 'TOOL', 'RULE', 'USED', 'EXPIRES', 'BY'], r.grants.map((g) => [g.id, g.agent, g.tool, g.ruleId ?? '(default)', `${g.uses}/${g.maxUses}`, g.expiresAt, g.by])));
      }
      const gone = r.withdrawn ?? [];
      if (gone.length > 0) {
        io.out('\nWithdrawn (the caller is gone: nothing to approve):\n' + table(['ID', 'AGENT', 'TOOL', 'WITHDRAWN', 'REASON'], gone.map((w) => [w.id, w.agent, w.tool, w.withdrawnAt, w.reason])));
      }
      return Exit.Ok;
    }
    if (sub === 'show') {
      if (id === undefined) throw new GatehouseError('USAGE', 'approvals show needs the approval ID (see: gatehouse approvals list)');
      const r = (await adminRequest(dirs.state, 'GET', '/approvals')) as { pending: PendingApproval[] };
      const p = r.pending.find((x) => x.id === id);
      if (!p) throw new GatehouseError('NOT_FOUND', esc`no pending approval ${id}: it was decided, timed out or withdrawn (see: gatehouse logs --grep ${id})`);
      io.out(values.json ? jsonLine(p) : showApproval(p));
      return Exit.Ok;
    }
    if (sub !== 'approve' && sub !== 'deny') throw new GatehouseError('USAGE', `unknown subcommand "approvals ${sub}"`);
    if (id === undefined) throw new GatehouseError('USAGE', `approvals ${sub} needs the approval ID (see: gatehouse approvals list)`);
    if (sub === 'approve') {
      if (values.uses !== undefined && values.grant === undefined) throw new GatehouseError('USAGE', '--uses needs --grant DUR');
      const uses = Number(values.uses ?? '10');
      if (!Number.isInteger(uses) || uses < 1) throw new GatehouseError('USAGE', '--uses must be a whole number >= 1');
      const body = { by, ...(values.grant !== undefined ? { grant: { ttl: values.grant, uses } } : {}) };
      const r = (await adminRequest(dirs.state, 'POST', `/approvals/${encodeURIComponent(id)}/approve`, body)) as { approval: PendingApproval; grant?: Grant };
      if (values.json) io.out(jsonLine(r));
      else io.out(esc`approved ${r.approval.id} (${r.approval.agent} → ${r.approval.tool})` + (r.grant ? esc`; grant ${r.grant.id} for ${r.grant.maxUses} calls until ${r.grant.expiresAt}` : '') + '\n');
      return Exit.Ok;
    }
    const body = { by, ...(values.reason !== undefined ? { reason: values.reason } : {}) };
    const r = (await adminRequest(dirs.state, 'POST', `/approvals/${encodeURIComponent(id)}/deny`, body)) as { approval: PendingApproval };
    if (values.json) io.out(jsonLine(r));
    else io.out(esc`denied ${r.approval.id} (${r.approval.agent} → ${r.approval.tool})\n`);
    return Exit.Ok;
  },
};
