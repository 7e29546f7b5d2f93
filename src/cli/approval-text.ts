/**
 * How one pending approval reads in a line of `gatehouse approvals` output:
 * "coder → github__create_issue" for a tool call, "agent coder wants CONNECT
 * registry.npmjs.org:443" for an egress connection. Not escaped: the caller
 * escapes the line (esc, escapeText, table) as it prints it.
 */
import type { Grant, PendingApproval } from '../policy/approvals.js';
import { egressSentence } from '../policy/egress-ask.js';

export function approvalSubject(p: PendingApproval): string {
  return p.egress === undefined ? `${p.agent} → ${p.tool}` : egressSentence(p.egress);
}

/** The AGENT cell: a connector that opens connections itself is named as one. */
export function whoCell(p: { agent: string; egress?: { caller: { kind: string } } | { caller: string } }): string {
  const kind = p.egress === undefined ? 'agent' : typeof p.egress.caller === 'string' ? p.egress.caller : p.egress.caller.kind;
  return kind === 'connector' ? `connector ${p.agent}` : p.agent;
}

/** The TOOL cell of a grant: an egress grant names host:port and, for a session grant, the session. */
export function grantTarget(g: Grant): string {
  if (g.egress === undefined) return g.tool;
  return `egress ${g.tool}${g.egress.sandbox !== undefined ? ` (sandbox ${g.egress.sandbox} only)` : ''}`;
}
