import type { AuditRecord } from './types.js';

/** The columns of a record as `gatehouse logs` shows it and the console exports it. */
export const AUDIT_ROW_HEADERS = ['TIME', 'EVENT', 'AGENT', 'TOOL', 'DECISION', 'RULE', 'OUTCOME', 'LATENCY'];

function cell(v: unknown): string {
  return v === undefined || v === null || v === '' ? '-' : String(v);
}

/** One record as a row of AUDIT_ROW_HEADERS: time, event, agent, tool (or provider:model), decision, rule, outcome (error code), latency. */
export function auditRow(r: AuditRecord): string[] {
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
