/** The policy engine: what the gateway core, the admin API and the CLI import. */
export type {
  AnnotationKey,
  AskSpec,
  CallContext,
  Decision,
  Effect,
  GrantLimit,
  Policy,
  RateLimit,
  Rule,
  ToolAnnotations,
} from './types.js';
export { evaluate, explain, hiddenFor, type Explanation, type ExplainedRule } from './evaluate.js';
export { loadPolicies, loadPolicyFiles, memorySource, policyFilesIn, DEFAULT_ASK_TIMEOUT_MS, type PolicySource } from './load.js';
export { PolicyStore, type PolicyChange, type PolicyStoreOptions } from './store.js';
export { RateLimiter, rateKey } from './rate-limit.js';
export {
  Approvals,
  systemClock,
  type ApprovalEvent,
  type ApprovalOutcome,
  type ApprovalsOptions,
  type Clock,
  type Grant,
  type PendingApproval,
} from './approvals.js';
export { runPolicyTests, splitToolName, type PolicyTestReport, type PolicyTestResult } from './test-cases.js';
export { parseDuration, parseRate, formatDuration } from '../config/duration.js';
