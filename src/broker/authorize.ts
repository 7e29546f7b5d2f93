import type { CallContext, Decision } from '../policy/types.js';

/** The outcome of the policy stage (decision + rate limit + human approval). */
export type Verdict = (
  | { allowed: true; decision: Decision; approvalId?: string }
  | { allowed: false; decision: Decision; code: 'POLICY_DENIED' | 'RATE_LIMITED' | 'APPROVAL_DENIED' | 'APPROVAL_TIMEOUT'; message: string; approvalId?: string }
) & {
  /** When the call waited for a human (performance.now() ms), for its trace. */
  approvalWait?: { from: number; to: number };
};

/** Decides a call. May wait (for a human) but must honour `signal`. */
export type Authorize = (ctx: CallContext, signal: AbortSignal) => Promise<Verdict>;

/** Whether a tool is hidden from this agent's tools/list (denied in every case). */
export type Hidden = (agent: string, connector: string, tool: string, annotations: CallContext['annotations']) => boolean;
