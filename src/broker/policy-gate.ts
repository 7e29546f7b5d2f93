import type { Authorize, Hidden, Verdict } from './authorize.js';
import { formatDuration } from '../policy/duration.js';
import { evaluate, hiddenFor } from '../policy/evaluate.js';
import { RateLimiter, rateKey } from '../policy/rate-limit.js';
import type { Policy } from '../policy/types.js';

export interface AuthorizeDeps {
  policy: () => Policy;
  limiter?: RateLimiter;
  now?: () => number;
}

/** The policy stage of the pipeline: decision, then rate limit. (Approvals: see approvals.ts.) */
export function policyAuthorizer(deps: AuthorizeDeps): { authorize: Authorize; hidden: Hidden } {
  const limiter = deps.limiter ?? new RateLimiter();
  const now = deps.now ?? Date.now;
  const authorize: Authorize = async (ctx) => {
    const decision = evaluate(deps.policy(), ctx);
    if (decision.effect === 'deny') return { allowed: false, decision, code: 'POLICY_DENIED', message: decision.message };
    if (decision.effect === 'ask') {
      return { allowed: false, decision, code: 'APPROVAL_DENIED', message: 'this call needs a human approval, and approvals are not enabled on this gateway' };
    }
    if (decision.limit) {
      const took = limiter.take(rateKey(decision.limit.ruleId, ctx.agent), decision.limit, now());
      if (!took.ok) {
        const v: Verdict = {
          allowed: false,
          decision,
          code: 'RATE_LIMITED',
          message: `rate limit of rule "${decision.limit.ruleId}" reached; retry in ${formatDuration(took.retryAfterMs)}`,
        };
        return v;
      }
    }
    return { allowed: true, decision };
  };
  const hidden: Hidden = (agent, connector, tool, annotations) => hiddenFor(deps.policy(), agent, connector, tool, annotations);
  return { authorize, hidden };
}
