import { userInfo } from 'node:os';
import { GatehouseError } from '../errors.js';
import type { Grant, PendingApproval } from '../policy/approvals.js';
import { adminRequest } from './control-client.js';
import { Exit, parse, table, type Command } from './command.js';
import { DIR_HELP, dirOptions, dirsFrom } from './dirs.js';

const HELP = `Usage:
  gatehouse approvals list [--json]
  gatehouse approvals approve ID [--grant DUR --uses N] [--by NAME]
  gatehouse approvals deny ID [--reason TEXT] [--by NAME]

Decides calls that policy sent to a human ("effect: ask"). A pending call
waits until approved, denied, or its timeout passes (then it is denied).
With --grant, later calls of the same agent, rule and tool pass without
asking until the grant expires or its uses run out (never more than the
rule's ask.grant allows). Talks to the running gateway over its control socket.

Options:
  --grant DUR        also grant for this long (e.g. 30m, 1h)
  --uses N           with --grant: number of calls the grant covers (default 10)
  --by NAME          who decided (default: your user name), recorded in the audit log
  --reason TEXT      with deny: the reason the agent is shown
  --json             machine-readable output
${DIR_HELP}
  -h, --help         this help
`;

function shortArgs(args: Record<string, unknown>): string {
  const s = JSON.stringify(args);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
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
      const r = (await adminRequest(dirs.state, 'GET', '/approvals')) as { pending: PendingApproval[]; grants: Grant[] };
      if (values.json) {
        io.out(JSON.stringify(r) + '\n');
        return Exit.Ok;
      }
      if (r.pending.length === 0) io.out('No calls are waiting for approval.\n');
      else io.out(table(['ID', 'AGENT', 'TOOL', 'RULE', 'ARGS', 'EXPIRES'], r.pending.map((p) => [p.id, p.agent, p.tool, p.ruleId ?? '(default)', shortArgs(p.args), p.expiresAt])));
      if (r.grants.length > 0) {
        io.out('\nGrants:\n' + table(['ID', 'AGENT', 'TOOL', 'RULE', 'USED', 'EXPIRES', 'BY'], r.grants.map((g) => [g.id, g.agent, g.tool, g.ruleId ?? '(default)', `${g.uses}/${g.maxUses}`, g.expiresAt, g.by])));
      }
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
      if (values.json) io.out(JSON.stringify(r) + '\n');
      else io.out(`approved ${r.approval.id} (${r.approval.agent} → ${r.approval.tool})${r.grant ? `; grant ${r.grant.id} for ${r.grant.maxUses} calls until ${r.grant.expiresAt}` : ''}\n`);
      return Exit.Ok;
    }
    const body = { by, ...(values.reason !== undefined ? { reason: values.reason } : {}) };
    const r = (await adminRequest(dirs.state, 'POST', `/approvals/${encodeURIComponent(id)}/deny`, body)) as { approval: PendingApproval };
    if (values.json) io.out(JSON.stringify(r) + '\n');
    else io.out(`denied ${r.approval.id} (${r.approval.agent} → ${r.approval.tool})\n`);
    return Exit.Ok;
  },
};
