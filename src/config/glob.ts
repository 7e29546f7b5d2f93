/**
 * Glob syntax checked at load. picomatch (names, exposure, models) and the
 * RE2 translation of argument globs (policy/arg-glob.ts) both accept a
 * malformed glob silently: `{a,b` and `[z-a]` compile to a pattern that
 * never matches, so a deny rule written with one denies nothing. picomatch
 * has no validating mode, hence this small checker of the shared syntax:
 * `\x` escapes, `[...]` classes (`!`/`^` negation, ranges, `[:alpha:]`),
 * `{a,b}` choices (nesting allowed).
 */
import { z } from 'zod';

const at = (i: number): string => `at character ${i + 1}`;

/** What is wrong with `glob`, and how to fix it; undefined when it is well formed. */
export function globProblem(glob: string): string | undefined {
  const opens: number[] = [];
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '\\') {
      if (i + 1 === glob.length) return 'a trailing "\\" escapes nothing (write "\\\\" for a literal "\\")';
      i++;
    } else if (c === '[') {
      const end = classEnd(glob, i);
      if (typeof end === 'string') return end;
      i = end;
    } else if (c === '{') {
      opens.push(i);
    } else if (c === '}' && opens.pop() === undefined) {
      return `unbalanced brace: "}" ${at(i)} closes no "{" (write "\\}" for a literal "}")`;
    }
  }
  const open = opens.pop();
  if (open !== undefined) return `unbalanced brace: "{" ${at(open)} is never closed (write "\\{" for a literal "{")`;
  return undefined;
}

/** The index of the "]" closing the class opened at `start`, or what is wrong with the class (argument globs end their classes here too). */
export function classEnd(glob: string, start: number): number | string {
  let i = start + 1;
  if (glob[i] === '!' || glob[i] === '^') i++;
  let first = true;
  // One class member: an escaped or plain character; returns it and the index after it.
  const member = (k: number): [string, number] | undefined => {
    if (glob[k] === '\\') return k + 1 < glob.length ? [glob[k + 1] as string, k + 2] : undefined;
    return k < glob.length ? [glob[k] as string, k + 1] : undefined;
  };
  while (i < glob.length) {
    if (glob[i] === ']' && !first) return i;
    first = false;
    if (glob.startsWith('[:', i)) {
      const close = glob.indexOf(':]', i + 2);
      if (close !== -1) {
        i = close + 2;
        continue;
      }
    }
    const lo = member(i);
    if (lo === undefined) break;
    i = lo[1];
    if (glob[i] === '-' && i + 1 < glob.length && glob[i + 1] !== ']') {
      const hi = member(i + 1);
      if (hi === undefined) break;
      if (lo[0] > hi[0]) {
        return `reversed range "${lo[0]}-${hi[0]}" in "${glob.slice(start, glob.indexOf(']', hi[1]) + 1 || glob.length)}" ${at(start)}: write "${hi[0]}-${lo[0]}"`;
      }
      i = hi[1];
    }
  }
  return `unclosed "[" ${at(start)} (write "\\[" for a literal "[")`;
}

/** A glob in a config file: refused at load, with what is wrong, when malformed. */
export const globString = z
  .string()
  .min(1)
  .superRefine((glob, ctx) => {
    const problem = globProblem(glob);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `malformed glob ${JSON.stringify(glob)}: ${problem}` });
  });
