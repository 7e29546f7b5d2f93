/**
 * The lines `gatehouse serve` prints while it runs, beside the start-up
 * banner: a stdio connector that runs unconfined (at start-up and when a
 * registry reload brings one), an upstream that is slow to start, a
 * connector with more tools quarantined than before (issue #16), and each
 * call that starts waiting for approval (with the command that decides it).
 */
import type { Gateway } from '../broker/gateway.js';
import type { ApprovalEvent } from '../policy/approvals.js';
import { unconfinedConnectors } from '../registry/confinement.js';
import type { Connector, StdioConnector, ToolConnector } from '../registry/schema.js';
import { quarantinedTools } from '../server/admin.js';
import type { PinRow, PinState } from '../tools/pins.js';
import { escapeText } from '../terminal.js';

export const SLOW_START_MS = 5_000;

/** What a starting upstream waits for, in words. */
function waitsFor(c: ToolConnector | undefined): string {
  if (c === undefined) return 'the server to start';
  if (c.kind === 'stdio') return `"${[c.command, ...c.args].join(' ')}" to answer initialize and tools/list on stdio`;
  if (c.kind === 'http') return `${c.url} to answer initialize and tools/list`;
  return `${c.kind} to be set up`;
}

/** One line per upstream not ready yet (starting, or failed and retrying); ready and not-ready (a missing secret: the banner says) are quiet. */
export function slowUpstreamLines(gateway: Gateway, afterMs = SLOW_START_MS): string[] {
  const lines: string[] = [];
  for (const r of gateway.report()) {
    const c = gateway.opts.registry.connectors.find((x): x is ToolConnector => x.name === r.name && x.kind !== 'inference');
    const st = r.status;
    if (st.state === 'starting') lines.push(`upstream "${r.name}" is not ready after ${afterMs / 1000}s: still waiting for ${waitsFor(c)}; its tools appear once it answers`);
    else if (st.state === 'failed') lines.push(`upstream "${r.name}" is not ready after ${afterMs / 1000}s: ${st.reason}; retrying in ${Math.ceil(st.retryInMs / 1000)}s`);
  }
  return lines;
}

/** The warning for a connector that runs with the gateway's rights (issue #15: `sandbox: off` is loud). */
export function unconfinedLine(c: Pick<StdioConnector, 'name' | 'file'>): string {
  return `warning: connector "${c.name}" runs unconfined (sandbox: off in ${c.file}): it can read your files and keys and reach the network`;
}

/**
 * Warns once per unconfined connector: those of the registry given now, then
 * each one a reload brings (a connector that stays unconfined is not warned
 * of again; one removed, or confined, and brought back is).
 */
export function unconfinedWarner(print: (line: string) => void): (registry: { connectors: readonly Connector[] }) => void {
  let warned = new Set<string>();
  return (registry) => {
    const now = unconfinedConnectors(registry.connectors);
    for (const c of now) if (!warned.has(c.name)) print(escapeText(unconfinedLine(c)) + '\n');
    warned = new Set(now.map((c) => c.name));
  };
}

const WHY_QUARANTINED: Record<Exclude<PinState, 'pinned'>, string> = { changed: 'changed since pinned', new: 'new', blocked: 'blocked' };

/** The warning for a connector whose tools wait for approval: how many, in which states, and the command that lists them. */
export function quarantinedLine(connector: string, rows: readonly Pick<PinRow, 'state'>[], cli: string, dirFlags = ''): string {
  const byState = new Map<string, number>();
  for (const r of rows) if (r.state !== 'pinned') byState.set(WHY_QUARANTINED[r.state], (byState.get(WHY_QUARANTINED[r.state]) ?? 0) + 1);
  const why = byState.size === 1 ? [...byState.keys()].join('') : [...byState].map(([w, n]) => `${n} ${w}`).join(', ');
  const n = rows.length;
  return `warning: connector "${connector}": ${n} ${n === 1 ? 'tool' : 'tools'} quarantined (${why}): ${cli} tools list --quarantined${dirFlags}`;
}

/**
 * Warns whenever a connector has more tools quarantined than when last
 * looked at (a tool was quarantined); a count that falls (an approval) or
 * stays is quiet, and a later rise warns again. Connectors the registry
 * no longer has are forgotten.
 */
export function quarantineWarner(print: (line: string) => void, cli: string, dirFlags = ''): (gateway: Gateway) => void {
  let counts = new Map<string, number>();
  return (gateway) => {
    const pins = gateway.opts.pins;
    if (pins === undefined) return;
    const now = new Map<string, number>();
    for (const r of gateway.report()) {
      const rows = quarantinedTools(pins, r.name);
      now.set(r.name, rows.length);
      if (rows.length > (counts.get(r.name) ?? 0)) print(escapeText(quarantinedLine(r.name, rows, cli, dirFlags)) + '\n');
    }
    counts = now;
  };
}

/** The line for a call that starts waiting for approval; undefined for every other approval event. */
export function approvalLine(ev: ApprovalEvent, cli: string, dirFlags = ''): string | undefined {
  if (ev.type !== 'requested') return undefined;
  const a = ev.approval;
  return `approval needed: agent "${a.agent}" called ${a.tool} (id ${a.id}, rule ${a.ruleId ?? '(default)'}, expires ${a.expiresAt}); approve: ${cli} approvals approve ${a.id}${dirFlags}  deny: ${cli} approvals deny ${a.id}${dirFlags}`;
}

export interface ServeNotices {
  onApprovalEvent: (ev: ApprovalEvent) => void;
  onUpstreamsStarting: (gateway: Gateway) => void;
  /** Stops the slow-start timer (the gateway is closing). */
  close: () => void;
}

/**
 * The hooks to pass to startGateway. `cli` is how the user runs gatehouse;
 * `dirFlags` carries --state when it is not the default (a command for another
 * state directory would talk to no gateway). Each line is data, escaped to one line.
 */
export function serveNotices(print: (line: string) => void, cli: string, dirFlags = '', slowMs = SLOW_START_MS): ServeNotices {
  let timer: NodeJS.Timeout | undefined;
  let unwatch: () => void = () => undefined;
  const warnUnconfined = unconfinedWarner(print);
  const warnQuarantined = quarantineWarner(print, cli, dirFlags);
  return {
    onApprovalEvent: (ev) => {
      const line = approvalLine(ev, cli, dirFlags);
      if (line !== undefined) print(escapeText(line) + '\n');
    },
    onUpstreamsStarting: (gateway) => {
      // Before any upstream starts; a reload swaps the registry and then rebuilds the catalog, so 'catalog' sees the new one first.
      // Every tools/list an upstream answers passes its pins before the catalog is rebuilt: 'catalog' sees each quarantine.
      warnUnconfined(gateway.opts.registry);
      const onCatalog = () => {
        warnUnconfined(gateway.opts.registry);
        warnQuarantined(gateway);
      };
      gateway.on('catalog', onCatalog);
      unwatch = () => gateway.off('catalog', onCatalog);
      timer = setTimeout(() => {
        for (const l of slowUpstreamLines(gateway, slowMs)) print(escapeText(l) + '\n');
      }, slowMs);
      timer.unref();
    },
    close: () => {
      clearTimeout(timer);
      unwatch();
    },
  };
}
