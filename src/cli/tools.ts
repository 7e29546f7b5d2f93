import { userInfo } from 'node:os';
import { Exit, GatehouseError } from '../errors.js';
import { adminRequest } from '../server/control-client.js';
import type { ToolRow } from '../server/tools-routes.js';
import { esc, escapeText, jsonLine } from '../terminal.js';
import { dirsFrom, handle, subcommand, table, type CommandModule } from './command.js';

const TOOLS_HELP = `
Every tool an upstream lists is pinned the first time it is seen: its name,
title, description, input and output schema and annotations (a hash per tool,
in <state>/pins). A later change, or a new tool of a pinned connector, is
quarantined (registry pin: strict, the default): hidden from tools/list and
refused as unknown until you approve it. pin: warn serves it and flags it;
pin: off does neither. Every step is in the audit log (tool.pinned,
tool.quarantined, tool.approved, tool.removed) with a readable diff.

  gatehouse tools list --quarantined
  gatehouse tools diff github__create_issue        # or: --connector github create_issue
  gatehouse tools approve github__create_issue
  gatehouse tools pin --connector github           # re-pin every listed tool after review`;

const who = (by: string | undefined): string => by ?? (process.env.USER || userInfo().username || 'admin');

const stateCell = (r: ToolRow): string =>
  r.state === 'pinned' ? (r.served ? 'pinned' : 'pinned (not listed)') : r.served ? `${r.state} (served: pin warn)` : `QUARANTINED (${r.state})`;

/** `github__create_issue` → github / create_issue when --connector is not given (the prefix is the connector's name by default). */
function target(tool: string | undefined, connector: string | undefined): { connector: string; tool: string | undefined } {
  if (connector !== undefined) return { connector, tool };
  if (tool === undefined) throw new GatehouseError('USAGE', 'name a tool (CONNECTOR__TOOL) or give --connector NAME');
  const i = tool.indexOf('__');
  if (i <= 0) throw new GatehouseError('USAGE', `"${escapeText(tool)}" does not name its connector: write CONNECTOR__TOOL, or add --connector NAME`);
  return { connector: tool.slice(0, i), tool: tool.slice(i + 2) };
}

export const toolsCommand: CommandModule = (program, io) => {
  const tools = subcommand(program, 'tools', 'pinned and quarantined tools: list, diff, approve, re-pin').addHelpText('after', TOOLS_HELP);

  const list = subcommand(tools, 'list', 'every tool seen, its pin state and what screening finds in it')
    .option('--connector <name>', 'only this connector')
    .option('--quarantined', 'only tools waiting for approval')
    .option('--json', 'machine-readable output');
  handle<{ connector?: string; quarantined?: boolean; json?: boolean }>(list, async (o) => {
    const dirs = dirsFrom(o, io.env);
    const q = o.connector !== undefined ? `?connector=${encodeURIComponent(o.connector)}` : '';
    const r = (await adminRequest(dirs.state, 'GET', `/tools${q}`)) as { tools: ToolRow[] };
    const rows = o.quarantined === true ? r.tools.filter((t) => t.state !== 'pinned') : r.tools;
    if (o.json === true) {
      io.out(jsonLine({ tools: rows }));
      return Exit.Ok;
    }
    if (rows.length === 0) {
      io.out(o.quarantined === true ? 'No tool is waiting for approval.\n' : 'No tools have been seen yet.\n');
      return Exit.Ok;
    }
    io.out(table(['CONNECTOR', 'TOOL', 'STATE', 'FINDINGS', 'REASON'], rows.map((t) => [t.connector, t.tool, stateCell(t), t.findings.map((f) => `${f.kind} in ${f.where}`).join('; ') || '-', t.reasons.join('; ') || '-'])));
    const waiting = rows.find((t) => !t.served && t.state !== 'pinned');
    if (waiting) io.out(esc`\nSee a change: gatehouse tools diff ${waiting.connector}__${waiting.tool}; accept it: gatehouse tools approve ${waiting.connector}__${waiting.tool}\n`);
    return Exit.Ok;
  });

  const diff = subcommand(tools, 'diff <tool>', 'a unified diff of a tool as pinned and as listed now')
    .option('--connector <name>', 'the connector (else taken from CONNECTOR__TOOL)')
    .option('--json', 'machine-readable output');
  handle<{ connector?: string; json?: boolean }>(diff, async (o, [tool]) => {
    const t = target(tool, o.connector);
    const dirs = dirsFrom(o, io.env);
    const r = (await adminRequest(dirs.state, 'GET', `/tools/${encodeURIComponent(t.connector)}/${encodeURIComponent(t.tool ?? '')}/diff`)) as { diff: string; findings?: ToolRow['findings'] };
    if (o.json === true) {
      io.out(jsonLine(r));
      return Exit.Ok;
    }
    // The diff shows hidden characters escaped already (src/tools/diff.ts); the findings' excerpts are escaped too.
    io.out(r.diff.endsWith('\n') ? r.diff : `${r.diff}\n`);
    const findings = r.findings ?? [];
    if (findings.length > 0) io.out(`\nScreening found in the version listed now:\n${findings.map((f) => esc`  ${f.kind} in ${f.where}: ${f.excerpt}\n`).join('')}`);
    return Exit.Ok;
  });

  const approve = subcommand(tools, 'approve [tool]', 'accept the version now listed: one tool, or every quarantined tool of --connector')
    .option('--connector <name>', 'the connector; alone, every quarantined tool of it')
    .option('--by <name>', 'who decided (default: your user name), recorded in the audit log')
    .option('--json', 'machine-readable output');
  handle<{ connector?: string; by?: string; json?: boolean }>(approve, async (o, [tool]) => {
    const t = target(tool, o.connector);
    const dirs = dirsFrom(o, io.env);
    const r = (await adminRequest(dirs.state, 'POST', '/tools/approve', { connector: t.connector, ...(t.tool !== undefined ? { tool: t.tool } : {}), by: who(o.by) })) as { approved: ToolRow[] };
    if (o.json === true) io.out(jsonLine(r));
    else if (r.approved.length === 0) io.out(esc`nothing of ${t.connector} was waiting for approval\n`);
    else io.out(r.approved.map((a) => esc`approved ${a.connector}__${a.tool} (now pinned)\n`).join(''));
    return Exit.Ok;
  });

  const pin = subcommand(tools, 'pin', 're-pin every tool a connector lists now (after reviewing it)')
    .requiredOption('--connector <name>', 'the connector')
    .option('--by <name>', 'who decided (default: your user name), recorded in the audit log')
    .option('--json', 'machine-readable output');
  handle<{ connector: string; by?: string; json?: boolean }>(pin, async (o) => {
    const dirs = dirsFrom(o, io.env);
    const r = (await adminRequest(dirs.state, 'POST', '/tools/pin', { connector: o.connector, by: who(o.by) })) as { pinned: ToolRow[] };
    if (o.json === true) io.out(jsonLine(r));
    else io.out(esc`pinned ${String(r.pinned.length)} tool(s) of ${o.connector}\n`);
    return Exit.Ok;
  });
};
