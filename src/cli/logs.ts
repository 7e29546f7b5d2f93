import { join } from 'node:path';
import { GatehouseError } from '../errors.js';
import { endCursor, parseTime, queryAudit, type AuditFilters } from '../audit/query.js';
import type { AuditRecord } from '../audit/types.js';
import { Exit, parse, table, type Command } from './command.js';
import { DIR_HELP, dirOptions, dirsFrom } from './dirs.js';
import { jsonLine } from '../terminal.js';

const HELP = `Usage: gatehouse logs [filters] [--limit N] [--json] [--reverse] [--follow]

Shows audit records (all files, rotated ones too), newest first, as a table:
time, event, agent, tool, decision, rule, outcome, latency.

Filters (all must match):
  --since T          at or after T: 1h, 30m, 2d (ago) or an ISO time
  --until T          before T
  --agent A          agent name
  --session S        session id
  --connector C      connector name
  --tool GLOB        exposed tool name, e.g. "github__*"
  --decision D       allow | deny | ask
  --outcome O        ok | error | denied | timeout | rejected | cancelled, or
                     pending | unknown: forwarded calls with no outcome record
                     (in flight / the gateway stopped: the upstream may have acted)
  --event E          e.g. tools/call, model.call, session.opened; a glob: "model.*"
                     (model calls show their model in the TOOL column)
  --grep TEXT        text anywhere in the record (case-sensitive)
Output:
  --limit N          at most N records (default 50; with --json default 1000)
  --json             one JSON record per line
  --reverse          oldest first
  --follow           print the newest records, then new ones as they are written (Ctrl-C stops)
${DIR_HELP}
  -h, --help         this help
`;

function cell(v: unknown): string {
  return v === undefined || v === null || v === '' ? '-' : String(v);
}

export function formatRow(r: AuditRecord): string[] {
  const latency = typeof r.durationMs === 'number' ? `${r.durationMs < 10 ? r.durationMs.toFixed(1) : Math.round(r.durationMs)}ms` : '-';
  const err = r.error as { code?: string } | undefined;
  return [
    r.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    r.event,
    cell(r.agent),
    cell(r.tool ?? (typeof r.model === 'string' ? `${String(r.provider)}:${r.model}` : undefined)),
    cell(r.decision),
    cell(r.rule),
    // An intent without its outcome shows what became of the call: pending, or unknown (gateway stopped).
    cell(r.outcome ?? r.callStatus) + (err?.code ? ` (${err.code})` : ''),
    latency,
  ];
}

const HEADERS = ['TIME', 'EVENT', 'AGENT', 'TOOL', 'DECISION', 'RULE', 'OUTCOME', 'LATENCY'];

export const logsCommand: Command = {
  name: 'logs',
  summary: 'query the audit log',
  help: HELP,
  async run(argv, io) {
    const { values } = parse(argv, {
      ...dirOptions,
      since: { type: 'string' },
      until: { type: 'string' },
      agent: { type: 'string' },
      session: { type: 'string' },
      connector: { type: 'string' },
      tool: { type: 'string' },
      decision: { type: 'string' },
      outcome: { type: 'string' },
      event: { type: 'string' },
      grep: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      reverse: { type: 'boolean' },
      follow: { type: 'boolean', short: 'f' },
    });
    if (values.help) {
      io.out(HELP);
      return Exit.Ok;
    }
    const filters: AuditFilters = {};
    for (const k of ['agent', 'session', 'connector', 'tool', 'decision', 'outcome', 'event', 'grep'] as const) {
      const v = values[k];
      if (v !== undefined) filters[k] = v;
    }
    if (values.decision !== undefined && !['allow', 'deny', 'ask'].includes(values.decision)) throw new GatehouseError('USAGE', '--decision must be allow, deny or ask');
    if (values.since !== undefined) filters.since = parseTime(values.since);
    if (values.until !== undefined) filters.until = parseTime(values.until);
    const limit = values.limit === undefined ? (values.json ? 1000 : 50) : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new GatehouseError('USAGE', '--limit must be 1-10000');
    const dir = join(dirsFrom(values, io.env).state, 'audit');

    const print = (records: AuditRecord[], header: boolean) => {
      if (values.json) for (const r of records) io.out(jsonLine(r));
      else if (records.length > 0) {
        const text = table(HEADERS, records.map(formatRow));
        io.out(header ? text : text.slice(text.indexOf('\n') + 1));
      }
    };

    if (values.follow) return follow(dir, filters, limit, print);
    const page = await queryAudit(dir, filters, { limit, order: values.reverse ? 'asc' : 'desc' });
    if (page.records.length === 0 && !values.json) io.err('no matching audit records\n');
    print(page.records, true);
    if (page.more && !values.json) io.err(`(showing ${limit}; more match: use --limit or narrow the filters)\n`);
    return Exit.Ok;
  },
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
