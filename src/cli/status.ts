import type { ConnectorReport } from '../broker/gateway.js';
import type { Dirs } from '../config/paths.js';
import { Exit } from '../errors.js';
import type { ConnectorSandbox } from '../registry/confinement.js';
import type { PendingApproval } from '../policy/approvals.js';
import type { SandboxSession } from '../sandbox/sandbox-sessions.js';
import type { Identity } from '../server/mcp-sessions.js';
import { esc, escapeText, jsonLine } from '../terminal.js';
import { dirsFrom, handle, subcommand, table, type CommandModule, type Io } from './command.js';
import { adminRequest } from '../server/control-client.js';
import { invocation } from './invocation.js';
import type { ShipperStats } from '../telemetry/siem/index.js';

/** `quarantined`: tools withheld until an admin approves them (every tool connector, when the gateway pins tools). */
export type StatusConnector = ConnectorReport & { sandbox?: ConnectorSandbox; quarantined?: number };

export interface GatewayStatus {
  gateway: { version: string; pid: number; dirs?: Dirs };
  /** `sandbox` on stdio connectors only. */
  connectors: StatusConnector[];
  sessions: { total: number; agents: Array<Identity & { sessions: number; busy: number; lastSeen: string }> };
  sandboxes: SandboxSession[];
  approvals: PendingApproval[];
  /** SIEM sinks (empty when the gateway ships nowhere). */
  siem?: ShipperStats[];
}

/** Reads everything `status` shows from the running gateway's admin API (GATEWAY_UNAVAILABLE, exit 3, when none runs). */
export async function fetchStatus(stateDir: string): Promise<GatewayStatus> {
  const s = (await adminRequest(stateDir, 'GET', '/status')) as { version: string; pid: number; connectors: StatusConnector[]; dirs?: Dirs };
  const [sessions, sandboxes, approvals, siem] = await Promise.all([
    adminRequest(stateDir, 'GET', '/sessions') as Promise<GatewayStatus['sessions']>,
    adminRequest(stateDir, 'GET', '/sandbox/sessions') as Promise<{ sessions: SandboxSession[] }>,
    adminRequest(stateDir, 'GET', '/approvals') as Promise<{ pending: PendingApproval[] }>,
    adminRequest(stateDir, 'GET', '/siem') as Promise<{ sinks: ShipperStats[] }>,
  ]);
  return {
    gateway: { version: s.version, pid: s.pid, ...(s.dirs ? { dirs: s.dirs } : {}) },
    connectors: s.connectors,
    sessions,
    sandboxes: sandboxes.sessions,
    approvals: approvals.pending,
    siem: siem.sinks,
  };
}

/** A connector's state and, when it is not ready, why and what fixes it. */
export function connectorState(r: ConnectorReport): [state: string, why: string] {
  const st = r.status;
  switch (st.state) {
    case 'ready':
      return ['ready', r.problems.length > 0 ? r.problems.map((p) => `${p.tool}: ${p.message}`).join('; ') : ''];
    case 'not-ready':
      return ['not ready', `${st.reason} (fix: ${st.fix})`];
    case 'failed':
      return ['failed', `${st.reason}; retrying in ${Math.ceil(st.retryInMs / 1000)}s`];
    case 'starting':
      return ['starting', 'waiting for the server to answer initialize and tools/list'];
    case 'stopped':
      return ['stopped', ''];
    case 'disabled':
      return ['disabled', `enabled: false in ${r.file}`];
  }
}

/** How a stdio connector runs; '' for the kinds without a process of their own. */
export function sandboxCell(r: StatusConnector): string {
  return r.sandbox === 'off' ? 'UNCONFINED (sandbox: off)' : r.sandbox === 'confined' ? 'confined' : '';
}

/** Tools of all connectors waiting for approval. */
function quarantinedTotal(connectors: readonly StatusConnector[]): number {
  return connectors.reduce((n, r) => n + (r.quarantined ?? 0), 0);
}

/**
 * The SANDBOX column only when a stdio connector is listed (http and built-in
 * connectors have nothing to say there); QUARANTINED only when a tool waits for approval.
 */
function connectorTable(connectors: StatusConnector[]): string {
  const withSandbox = connectors.some((r) => r.sandbox !== undefined);
  const withQuarantined = quarantinedTotal(connectors) > 0;
  const rows = connectors.map((r) => {
    const [state, why] = connectorState(r);
    const tools = r.status.state === 'ready' ? String(r.tools) : '-';
    const quarantined = (r.quarantined ?? 0) > 0 ? String(r.quarantined) : '';
    return [r.name, r.kind, state, tools, ...(withQuarantined ? [quarantined] : []), ...(withSandbox ? [sandboxCell(r)] : []), why];
  });
  return table(['NAME', 'KIND', 'STATE', 'TOOLS', ...(withQuarantined ? ['QUARANTINED'] : []), ...(withSandbox ? ['SANDBOX'] : []), 'WHY'], rows);
}

/** The command that lists what waits; empty when nothing does. */
function quarantinedHint(connectors: readonly StatusConnector[], cli: string): string {
  const n = quarantinedTotal(connectors);
  if (n === 0) return '';
  return escapeText(`${n} ${n === 1 ? 'tool waits' : 'tools wait'} for approval: ${cli} tools list --quarantined`) + '\n';
}

export function formatStatus(s: GatewayStatus, cli: string): string {
  const parts: string[] = [];
  parts.push(esc`Gateway ${s.gateway.version} running (pid ${s.gateway.pid})` + (s.gateway.dirs ? esc`, state ${s.gateway.dirs.state}` : '') + '\n');
  parts.push(
    '\nConnectors:\n' +
      (s.connectors.length === 0
        ? '  none (add one: gatehouse connector add)\n'
        : connectorTable(s.connectors) + quarantinedHint(s.connectors, cli)),
  );
  parts.push(
    `\nSessions: ${s.sessions.total} open\n` +
      (s.sessions.agents.length === 0 ? '' : table(['AGENT', 'VIA', 'SESSIONS', 'CALLS IN FLIGHT', 'LAST REQUEST'], s.sessions.agents.map((a) => [a.agent, a.via === 'sandbox' ? `sandbox ${a.sandbox ?? ''}` : 'token', String(a.sessions), String(a.busy), a.lastSeen]))),
  );
  parts.push(`\nSandboxes: ${s.sandboxes.length}\n` + (s.sandboxes.length === 0 ? '' : table(['ID', 'AGENT', 'URL INSIDE'], s.sandboxes.map((b) => [b.id, b.agent, b.url]))));
  parts.push(
    `\nPending approvals: ${s.approvals.length}\n` +
      (s.approvals.length === 0
        ? ''
        : table(['ID', 'AGENT', 'TOOL', 'EXPIRES'], s.approvals.map((p) => [p.id, p.agent, p.tool, p.expiresAt])) +
          escapeText(`Decide: ${cli} approvals approve ID | ${cli} approvals deny ID   (follow: ${cli} approvals watch)`) +
          '\n'),
  );
  if (s.siem !== undefined) parts.push(siemText(s.siem));
  return parts.join('');
}

/** One line per SIEM sink: its backlog, how far it shipped, and its last error while it fails. */
function siemText(sinks: readonly ShipperStats[]): string {
  if (sinks.length === 0) return '\nSIEM shipping: off (gatehouse serve --siem FILE)\n';
  const backlog = sinks.reduce((n, s) => n + s.backlog, 0);
  return (
    `\nSIEM shipping: ${sinks.length} sink${sinks.length === 1 ? '' : 's'}, backlog ${backlog} record${backlog === 1 ? '' : 's'}\n` +
    table(
      ['SINK', 'KIND', 'STATE', 'BACKLOG', 'SHIPPED TO', 'LAST ERROR'],
      sinks.map((s) => [s.sink, s.kind, s.state, String(s.backlog), s.lastShippedSeq === null ? '-' : `seq ${s.lastShippedSeq}`, s.lastError ?? '']),
    )
  );
}

export const statusCommand: CommandModule = (program, io: Io) => {
  const cmd = subcommand(program, 'status', 'what the running gateway is doing: connectors, sessions, sandboxes, approvals, SIEM shipping')
    .description(
      'Asks the running gateway (over its control socket) for its connectors (state, tools, tools\nquarantined until approved, whether a stdio one runs confined, why not ready), open sessions per agent, sandboxes, calls waiting for approval and the backlog of each SIEM sink.\nExit 3 when no gateway runs for the state directory.',
    )
    .option('--json', 'one JSON object');
  handle<{ json?: boolean }>(cmd, async (o) => {
    const dirs = dirsFrom(o, io.env);
    const s = await fetchStatus(dirs.state);
    io.out(o.json === true ? jsonLine(s) : formatStatus(s, invocation()));
    return Exit.Ok;
  });
};
