/**
 * The one way a zod issue is put into words: config files (with file:line
 * added by load-yaml.ts), admin request bodies, state files, tool arguments.
 */
import type { ZodError } from 'zod';

export type ZodIssue = ZodError['issues'][number];
type Path = ReadonlyArray<PropertyKey>;

/** The path an issue is about; for one unknown key, the key itself (so a reader is pointed at it). */
export function issuePath(issue: ZodIssue): Path {
  const path = issue.path as Path;
  if (issue.code === 'unrecognized_keys' && issue.keys.length === 1) return [...path, issue.keys[0] as string];
  return path;
}

/** A path as a reader writes it: `rules[0].ask.timeout`; '' for the top level. */
export function keyOf(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

/** What is wrong, in words: unknown keys by name, a missing required key as such, else zod's message. */
export function issueMessage(issue: ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')} (misspelt?)`;
  }
  // A record key's own problems (e.g. a malformed glob as a key), not zod's "Invalid key in record".
  if (issue.code === 'invalid_key') return issue.issues.map((i) => i.message).join('; ');
  // `input` is there only when parsed with { reportInput: true }.
  const missing = 'input' in issue && issue.input === undefined && (issue.code === 'invalid_type' || issue.code === 'invalid_value' || issue.code === 'invalid_union');
  if (!missing) return issue.message;
  const oneOf = issue.code === 'invalid_value' ? ` (one of: ${issue.values.map(String).join(', ')})` : '';
  return `required key is missing${oneOf}`;
}

/** Issues on one line, `key: message; key: message`, at most `max` of them. */
export function formatZodIssues(issues: readonly ZodIssue[], max = 5): string {
  const shown = issues.slice(0, max).map((i) => `${keyOf(issuePath(i)) || '(top level)'}: ${issueMessage(i)}`);
  if (issues.length > max) shown.push(`and ${issues.length - max} more`);
  return shown.join('; ');
}
