import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DECISIONS, parseAuditFilters, type FilterKey } from '../audit/filter.js';
import { endCursor, queryAudit, type AuditFilters } from '../audit/query.js';
import { AUDIT_ROW_HEADERS, auditRow } from '../audit/row.js';
import type { AuditRecord } from '../audit/types.js';
import { Exit, GatehouseError } from '../errors.js';
import { dirsFrom, handle, subcommand, table, type CommandModule } from './command.js';
import { jsonLine } from '../terminal.js';

/** The filter flags are the audit filter's keys (one parser, audit/filter.ts), plus the listing's own. */
interface LogsOptions extends Partial<Record<FilterKey, string>> {
  limit?: string;
  json?: boolean;
  reverse?: boolean;
  follow?: boolean;
}

export const logsCommand: CommandModule = (program, io) => {
  const cmd = subcommand(program, 'logs', 'query the audit log')
    .description(
      'Shows audit records (all files, rotated ones too), newest first, as a table:\ntime, event, agent, tool, decision, rule, outcome, latency. Filters must all match.',
    )
    .option('--since <time>', 'at or after this time: 1h, 1h30m, 2d (ago) or an ISO time')
    .option('--until <time>', 'before this time')
    .option('--agent <name>', 'agent name')
    .option('--session <id>', 'session id')
    .option('--connector <name>', 'connector name')
    .option('--tool <glob>', 'exposed tool name, e.g. "github__*"')
    .option('--decision <d>', DECISIONS.join(' | '))
    .option(
      '--outcome <o>',
      'ok | error | denied | timeout | rejected | cancelled, or pending | unknown: forwarded calls with no outcome record (in flight / the gateway stopped: the upstream may have acted)',
    )
    .option('--event <e>', 'e.g. tools/call, model.call, session.opened; a glob: "model.*" (model calls show their model in the TOOL column)')
    .option('--grep <text>', 'text anywhere in the record (case-sensitive)')
    .option('--limit <n>', 'at most N records (default 50; with --json default 1000)')
    .option('--json', 'one JSON record per line')
    .option('--reverse', 'oldest first')
    .option('-f, --follow', 'print the newest records, then new ones as they are written (Ctrl-C stops)');
  handle<LogsOptions>(cmd, async (o) => {
    const filters = parseAuditFilters(o, { name: (k) => `--${k}` });
    const limit = o.limit === undefined ? (o.json ? 1000 : 50) : Number(o.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new GatehouseError('USAGE', '--limit must be 1-10000');
    const state = dirsFrom(o, io.env).state;
    const dir = join(state, 'audit');
    // A missing log is a wrong --state (or a gateway never started), not "no records".
    if (!existsSync(dir)) throw new GatehouseError('STATE_UNAVAILABLE', `no audit log in ${dir}: start the gateway once (gatehouse serve), or pass the --state DIR it uses (env GATEHOUSE_STATE)`);

    const print = (records: AuditRecord[], header: boolean) => {
      if (o.json) for (const r of records) io.out(jsonLine(r));
      else if (records.length > 0) {
        const text = table(AUDIT_ROW_HEADERS, records.map(auditRow));
        io.out(header ? text : text.slice(text.indexOf('\n') + 1));
      }
    };

    if (o.follow) return follow(dir, filters, limit, print);
    const page = await queryAudit(dir, filters, { limit, order: o.reverse ? 'asc' : 'desc' });
    if (page.records.length === 0 && !o.json) io.err('no matching audit records\n');
    print(page.records, true);
    if (page.more && !o.json) io.err(`(showing ${limit}; more match: use --limit or narrow the filters)\n`);
    return Exit.Ok;
  });
};

async function follow(dir: string, filters: AuditFilters, limit: number, print: (r: AuditRecord[], header: boolean) => void): Promise<number> {
  let cursor = await endCursor(dir);
  const recent = await queryAudit(dir, filters, { limit, order: 'desc' });
  print(recent.records.reverse(), true);
  let stop = false;
  const onSig = () => void (stop = true);
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  try {
    while (!stop) {
      await new Promise((r) => setTimeout(r, 300));
      for (;;) {
        const page = await queryAudit(dir, filters, { cursor, order: 'asc', limit: 1000 });
        print(page.records, false);
        if (page.nextCursor !== null) cursor = page.nextCursor;
        if (!page.more) break;
      }
    }
  } finally {
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
  return Exit.Ok;
}
