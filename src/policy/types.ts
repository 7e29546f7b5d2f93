/**
 * Types shared by the policy engine and its callers (the call pipeline, the
 * admin API, the CLI). The evaluator over these types is a pure function.
 */

/** Upstream tool annotations (MCP `ToolAnnotations`). Untrusted hints. */
export interface ToolAnnotations {
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

export const ANNOTATION_KEYS = ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'] as const;
export type AnnotationKey = (typeof ANNOTATION_KEYS)[number];

export interface CallContext {
  /** Agent identity (token subject or sandbox session name). */
  agent: string;
  /** Registry connector name. */
  connector: string;
  /** Exposed tool name, e.g. "github__create_issue". */
  tool: string;
  /** Name at the upstream, e.g. "create_issue". */
  upstreamTool: string;
  args: Record<string, unknown>;
  annotations?: ToolAnnotations;
  time: Date;
  /** What is being decided: a tool call (default) or a model call (`tool` is then the model, `connector` the provider). */
  kind?: CallKind;
}

export type CallKind = 'tool' | 'model';

export type Effect = 'allow' | 'deny' | 'ask';

export interface RateLimit {
  capacity: number;
  perMs: number;
}

export interface GrantLimit {
  ttlMs: number;
  maxUses: number;
}

export interface AskSpec {
  timeoutMs: number;
  /** The largest grant an approver may give (absent: approvals cover the one call only). */
  grant?: GrantLimit;
}

export interface Decision {
  effect: Effect;
  /** null = the policy default decided. */
  ruleId: string | null;
  /** Human reason, e.g. the rule's message. */
  message: string;
  /** Set when the allowing rule has `limit:`; the caller takes a token from a RateLimiter. */
  limit?: { ruleId: string; capacity: number; perMs: number };
  /** Set when effect is `ask`. */
  ask?: AskSpec;
}

/** The result of one argument matcher (or the whole rule) against a call. */
export type MatchResult = { ok: true } | { ok: false; reason: string };

/** One compiled argument check, e.g. `owner: { equals: acme }` → one ArgCheck per matcher key. */
export interface ArgCheck {
  /** Display form, e.g. `equals "acme"`. */
  describe: string;
  /** `value` is undefined when the path is absent. Must never throw. */
  test(value: unknown): boolean;
  /**
   * Why the value cannot be judged at all (e.g. a path with a ".." segment), or undefined.
   * Such a value never satisfies `test`; in a deny or ask rule the check counts as holding (fail closed).
   */
  unjudgeable?(value: unknown): string | undefined;
}

export interface ArgRule {
  /** The key as written, e.g. "repo.owner". */
  key: string;
  /** Path segments, e.g. ["repo", "owner"]. */
  path: readonly string[];
  checks: readonly ArgCheck[];
}

export interface NameMatcher {
  pattern: string;
  /** true when the pattern has no glob characters (then test is string equality). */
  exact: boolean;
  /** Leading plain characters every matching name starts with (the whole name when exact). */
  prefix: string;
  test(name: string): boolean;
}

export interface CompiledWhen {
  source: string;
  /** Throws on an evaluation error or a non-boolean result. */
  evaluate(ctx: CallContext): boolean;
}

export interface Rule {
  id: string;
  /** The file the rule was written in (absolute path). */
  file: string;
  line: number;
  effect: Effect;
  message: string;
  agent: NameMatcher | null;
  connector: NameMatcher | null;
  /** The tool pattern (`tool:`) or, for a model rule, the model pattern (`model:`). */
  tool: NameMatcher | null;
  /** Which calls the rule can match: `tool:` rules tool calls, `model:` rules model calls, neither: both; `egress:` rules only egress connections (see egress.ts). */
  on: CallKind | 'any' | 'egress';
  /** Set exactly when `on` is 'egress'. */
  egress?: EgressMatcher;
  args: readonly ArgRule[];
  annotations: ReadonlyArray<readonly [AnnotationKey, boolean]>;
  when: CompiledWhen | null;
  limit?: RateLimit;
  ask?: AskSpec;
}

/** A validated, merged, immutable set of policy files. */
export interface Policy {
  /** Decision when no rule matches. */
  default: Effect;
  /** Ask settings used when the default is `ask`. */
  defaultAsk: AskSpec;
  /** Rules in load order (files by name; an extended file before the file that extends it). */
  rules: readonly Rule[];
  /** Every file that contributed, absolute paths, in load order. */
  files: readonly string[];
  /** sha256 over the files' names and contents: changes iff the policy text changed. */
  digest: string;
  /** Things `policy check` should show that are not errors. */
  warnings: readonly string[];
  /** @internal lookup index built at load; see evaluate.ts. */
  readonly index: PolicyIndex;
}

/** @internal Rules grouped for fast evaluation. */
export interface PolicyIndex {
  /** Candidate rules for a (agent, connector, tool) triple, grouped deny → ask → allow(limited first) → allow. */
  candidates(agent: string, connector: string, tool: string): readonly Rule[];
}

/** Who opens an egress connection: a sandboxed agent, or a connector's own process. */
export interface EgressCaller {
  kind: 'agent' | 'connector';
  name: string;
}

/** One egress connection to decide: a CONNECT tunnel (no method or path) or a plain-HTTP request. */
export interface EgressRequest {
  caller: EgressCaller;
  /** Lower-case host name without a trailing dot, or an IP literal (IPv6 without brackets). */
  host: string;
  port: number;
  /** Plain HTTP only (upper case). */
  method?: string;
  /** Plain HTTP only: the path without the query. */
  path?: string;
}

/** A compiled `match.egress`. */
export interface EgressMatcher {
  host: NameMatcher;
  ports: readonly number[];
  /** Upper case; absent: any method. */
  methods?: readonly string[];
  path?: { pattern: string; test(path: string): boolean };
}

export interface EgressDecision extends Decision {
  /**
   * true when an allow rule matching the connection names the host exactly (no glob): only then may
   * the name resolve to a loopback, private, link-local or metadata address.
   */
  hostNamed: boolean;
  /**
   * Set whenever a rule decided: false when that rule matched only because it cannot judge the request
   * (a tunnel against a method/path rule, a path a glob cannot judge; see matchEgress), true when it judged
   * everything it names. Absent (no rule decided, or a decision not made by evaluateEgress) counts as false:
   * an unjudged ask always goes to a human, never to a grant, and its approval gives none.
   */
  judged?: boolean;
  /** The deciding rule's plain-HTTP limits, when it has any: what a grant given under it covers at most. */
  http?: { methods?: readonly string[]; path?: string };
}
