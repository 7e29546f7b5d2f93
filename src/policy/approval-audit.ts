import { summarizeArgs } from '../audit/summarize.js';
import type { AuditEvent } from '../audit/types.js';
import type { ApprovalEvent, PendingApproval } from './approvals.js';

/** An egress approval's connection (its `tool` is only the same in one line). */
const conn = (a: PendingApproval): Record<string, unknown> => (a.egress === undefined ? {} : { egress: { ...a.egress } });

/** An approval event as an audit record (arguments are already secret-free). */
export function approvalRecord(ev: ApprovalEvent): AuditEvent {
  return { ...record(ev), ...('approval' in ev ? conn(ev.approval) : {}), ...('grant' in ev && ev.grant?.egress !== undefined ? { grantEgress: { ...ev.grant.egress } } : {}) };
}

function record(ev: ApprovalEvent): AuditEvent {
  switch (ev.type) {
    case 'requested':
      return { event: 'approval.requested', agent: ev.approval.agent, approvalId: ev.approval.id, tool: ev.approval.tool, rule: ev.approval.ruleId, args: summarizeArgs(ev.approval.args), expiresAt: ev.approval.expiresAt };
    case 'approved':
      return { event: 'approval.approved', agent: ev.approval.agent, approvalId: ev.approval.id, tool: ev.approval.tool, rule: ev.approval.ruleId, by: ev.by, ...(ev.grant ? { grant: { id: ev.grant.id, expiresAt: ev.grant.expiresAt, maxUses: ev.grant.maxUses } } : {}) };
    case 'denied':
      return { event: 'approval.denied', agent: ev.approval.agent, approvalId: ev.approval.id, tool: ev.approval.tool, rule: ev.approval.ruleId, by: ev.by, reason: ev.reason };
    case 'timed_out':
      return { event: 'approval.timeout', agent: ev.approval.agent, approvalId: ev.approval.id, tool: ev.approval.tool, rule: ev.approval.ruleId };
    case 'withdrawn':
      return { event: 'approval.withdrawn', agent: ev.approval.agent, approvalId: ev.approval.id, tool: ev.approval.tool, rule: ev.approval.ruleId, reason: ev.reason };
    case 'state_rejected':
      return { event: 'approvals.state', ok: false, file: ev.file, error: ev.error, ...(ev.movedTo !== undefined ? { movedTo: ev.movedTo } : {}), effect: 'started with no grants' };
    case 'state_error':
      return { event: 'approvals.state', ok: false, file: ev.file, error: ev.error };
    case 'refused':
      return { event: 'approval.refused', agent: ev.agent, tool: ev.tool, rule: ev.ruleId, reason: ev.reason };
    case 'grant_used':
      return { event: 'grant.used', agent: ev.agent, tool: ev.tool, grantId: ev.grant.id, uses: ev.grant.uses, maxUses: ev.grant.maxUses };
    case 'grant_expired':
      return { event: 'grant.expired', agent: ev.grant.agent, tool: ev.grant.tool, grantId: ev.grant.id, reason: ev.reason };
  }
}
