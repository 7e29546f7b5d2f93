import type { Approvals } from '../policy/approvals.js';
import { formatDuration } from '../config/duration.js';
import { evaluate, hiddenFor } from '../policy/evaluate.js';
import { RateLimiter, rateKey } from '../policy/rate-limit.js';
import type { Policy } from '../policy/types.js';
import type { Authorize, Hidden } from './authorize.js';

export interface AuthorizeDeps {
  policy: () => Policy;
  approvals?: Approvals;
  limiter?: RateLimiter;
  /** Makes arguments safe to show a human approver (secrets redacted). */
  redact?: <T>(v: T) => T;
  now?: () => number;
}

/** The policy stage of the pipeline: decision, then human approval for `ask`, then rate limit. */
export function policyAuthorizer(deps: AuthorizeDeps): { authorize: Authorize; hidden: Hidden } {
  const limiter = deps.limiter ?? new RateLimiter();
  const now = deps.now ?? Date.now;
  const redact = deps.redact ?? (<T>(v: T) => v);
  const authorize: Authorize = async (ctx, signal) => {
    const decision = evaluate(deps.policy(), ctx);
    if (decision.effect === 'deny') return { allowed: false, decision, code: 'POLICY_DENIED', message: decision.message };
    let approvalId: string | undefined;
    let approvalWait: { from: number; to: number } | undefined;
    if (decision.effect === 'ask') {
      if (!deps.approvals) {
        return { allowed: false, decision, code: 'APPROVAL_DENIED', message: 'this call needs a human approval, and approvals are not enabled on this gateway' };
      }
      // The approver sees every argument whole (an agent could hide its payload past a preview); the audit record keeps a bounded summary.
      const from = performance.now();
      const outcome = await deps.approvals.request(ctx, decision, redact(ctx.args), { signal });
      // A pending approval was waited on (a grant or a refusal decides at once).
      if (outcome.approvalId !== undefined) approvalWait = { from, to: performance.now() };
      approvalId = outcome.approvalId ?? outcome.grantId;
      // An approval is for a caller who is still there: never run a call for nobody.
      const waited = approvalWait !== undefined ? { approvalWait } : {};
      if (outcome.approved && signal.aborted) {
        return { allowed: false, decision, code: 'APPROVAL_DENIED', message: 'not run: the caller went away before the approval arrived', ...(approvalId !== undefined ? { approvalId } : {}), ...waited };
      }
      if (!outcome.approved) {
        return {
          allowed: false,
          decision,
          code: outcome.timedOut === true ? 'APPROVAL_TIMEOUT' : 'APPROVAL_DENIED',
          message: `not approved: ${outcome.reason}`,
          ...(approvalId !== undefined ? { approvalId } : {}),
          ...waited,
        };
      }
    }
    if (decision.limit) {
      const took = limiter.take(rateKey(decision.limit.ruleId, ctx.agent), decision.limit, now());
      if (!took.ok) {
        return {
          allowed: false,
          decision,
          code: 'RATE_LIMITED',
          message: `rate limit of rule "${decision.limit.ruleId}" reached; retry in ${formatDuration(took.retryAfterMs)}`,
        };
      }
    }
    return { allowed: true, decision, ...(approvalId !== undefined ? { approvalId } : {}), ...(approvalWait !== undefined ? { approvalWait } : {}) };
  };
  const hidden: Hidden = (agent, connector, tool, annotations) => hiddenFor(deps.policy(), agent, connector, tool, annotations);
  return { authorize, hidden };
}
