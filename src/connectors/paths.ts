/**
 * Arguments that become URL path segments. Each is checked against a strict
 * pattern for what it names (owner, repository, issue key...) and then
 * percent-encoded, so no argument can step to another endpoint: `..`, `/`,
 * `\`, `%2f`, `%2e`, `?`, `#` and control characters never pass.
 * Pure functions: a verdict or an encoded segment, nothing else.
 */
import { GatehouseError } from '../errors.js';

/** An argument refused before anything was sent: ARGS_INVALID, naming the argument. */
export class PathArgError extends GatehouseError {
  readonly arg: string;
  constructor(arg: string, message: string) {
    super('ARGS_INVALID', message, { details: { arg } });
    this.name = 'PathArgError';
    this.arg = arg;
  }
}

/**
 * A GitHub login (user or organization): alphanumerics and single hyphens,
 * no hyphen first or last; an Enterprise Managed User's login adds `_` and
 * the enterprise's shortcode (3–8 alphanumerics), e.g. `mona-cat_octo`.
 * At most GITHUB_LOGIN_MAX characters in all. Free of lookaround, so the
 * gateway's RE2 argument check can run it as a tool schema's pattern.
 * https://docs.github.com/en/enterprise-cloud@latest/admin/managing-iam/iam-configuration-reference/username-considerations-for-external-authentication
 */
export const GITHUB_LOGIN = /^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?:_[A-Za-z0-9]{3,8})?$/;
export const GITHUB_LOGIN_MAX = 39;

/** Patterns for identifiers that become path segments (documented provider rules, kept strict). */
export const SEGMENT = {
  /** GitHub login or organization: GITHUB_LOGIN, at most GITHUB_LOGIN_MAX long. */
  githubOwner: new RegExp(`^(?=.{1,${GITHUB_LOGIN_MAX}}$)${GITHUB_LOGIN.source.slice(1)}`),
  /** GitHub repository name: letters, digits, '.', '_', '-', at most 100 (never "." or ".."). */
  githubRepo: /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,100}$/,
  /** Jira issue key (PROJ-123) or numeric issue id. */
  jiraIssue: /^(?:[A-Z][A-Z0-9_]{0,49}-[1-9][0-9]{0,9}|[1-9][0-9]{0,17})$/,
  /** Jira project key. */
  jiraProject: /^[A-Z][A-Z0-9_]{0,49}$/,
  /** Jira transition id. */
  jiraTransition: /^[1-9][0-9]{0,9}$/,
  /** Slack conversation id (C…, G…, D…). Sent as a parameter, but checked the same way. */
  slackChannel: /^[CGD][A-Z0-9]{2,30}$/,
  /** Slack message timestamp, e.g. 1712345678.123456. */
  slackTs: /^[0-9]{1,12}\.[0-9]{1,8}$/,
  /** One segment of a file path in a repository. */
  fileSegment: /^(?!\.{1,2}$)[^\u0000-\u001f\u007f/\\%?#]{1,255}$/,
} as const;

export type SegmentKind = keyof typeof SEGMENT;

// Things that must never appear in a path argument, even encoded: reported with a precise reason.
const FORBIDDEN: Array<[RegExp, string]> = [
  [/[\u0000-\u001f\u007f]/, 'control characters'],
  [/\\/, 'a backslash'],
  [/%(?:2e|2f|5c|25|00)/i, 'an encoded ".", "/", "\\" or "%"'],
  [/%/, 'a percent sign'],
  [/(?:^|\/)\.{1,2}(?:\/|$)/, 'a ".." or "." segment'],
  [/[?#]/, 'a "?" or "#"'],
];

function why(value: string): string | undefined {
  for (const [re, what] of FORBIDDEN) if (re.test(value)) return what;
  return undefined;
}

/** Checks one value against its pattern and returns it percent-encoded for a URL path. Throws PathArgError. */
export function segment(arg: string, value: unknown, kind: SegmentKind): string {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof text !== 'string') throw new PathArgError(arg, `${arg} must be a string`);
  const bad = why(text);
  if (bad !== undefined) throw new PathArgError(arg, `${arg} may not contain ${bad}`);
  if (text.includes('/')) throw new PathArgError(arg, `${arg} may not contain "/"`);
  if (!SEGMENT[kind].test(text)) throw new PathArgError(arg, `${arg} ${JSON.stringify(text.slice(0, 80))} is not a valid ${describe(kind)}`);
  return encodeURIComponent(text);
}

/** A positive integer segment (issue or pull request number). */
export function numberSegment(arg: string, value: unknown): string {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > 2 ** 31 - 1) {
    throw new PathArgError(arg, `${arg} must be a positive integer`);
  }
  return String(value);
}

/**
 * A multi-segment file path inside a repository ("src/index.ts"): every
 * segment is checked on its own, then encoded; the '/' between them is the
 * only separator that reaches the URL.
 */
export function filePath(arg: string, value: unknown): string {
  if (typeof value !== 'string') throw new PathArgError(arg, `${arg} must be a string`);
  if (value === '' ) return '';
  const bad = why(value);
  if (bad !== undefined) throw new PathArgError(arg, `${arg} may not contain ${bad}`);
  if (value.length > 1024) throw new PathArgError(arg, `${arg} is longer than 1024 characters`);
  // Leading and trailing '/' dropped by index: `/\/+$/` would backtrack over every run of slashes (quadratic).
  let start = 0;
  let end = value.length;
  while (start < end && value[start] === '/') start++;
  while (end > start && value[end - 1] === '/') end--;
  const parts = value.slice(start, end).split('/');
  return parts
    .map((p) => {
      if (!SEGMENT.fileSegment.test(p)) throw new PathArgError(arg, `${arg} has an invalid segment ${JSON.stringify(p.slice(0, 80))} (empty, "." or "..")`);
      return encodeURIComponent(p);
    })
    .join('/');
}

function describe(kind: SegmentKind): string {
  switch (kind) {
    case 'githubOwner':
      return 'GitHub owner (letters, digits and single hyphens, at most 39; a managed user ends in _SHORTCODE)';
    case 'githubRepo':
      return 'GitHub repository name (letters, digits, ".", "_", "-")';
    case 'jiraIssue':
      return 'Jira issue key (like PROJ-123) or numeric id';
    case 'jiraProject':
      return 'Jira project key (like PROJ)';
    case 'jiraTransition':
      return 'Jira transition id (digits)';
    case 'slackChannel':
      return 'Slack channel id (like C0123ABCD)';
    case 'slackTs':
      return 'Slack message timestamp (like 1712345678.123456)';
    case 'fileSegment':
      return 'file path segment';
  }
}
