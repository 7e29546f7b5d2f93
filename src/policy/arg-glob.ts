/**
 * Argument globs, run by RE2 (linear time in the value).
 *
 * Picomatch compiles globs to backtracking JS regexes: `*a*a*a*b` against a
 * few thousand characters that an agent sends runs for minutes. Names
 * (agent, connector, tool) come from the catalog and tokens and stay with
 * picomatch; argument values are agent-controlled, so their globs are
 * translated here to RE2 syntax instead. Supported, as in picomatch:
 *   *      any characters except "/"
 *   **     as a whole path segment: any number of segments ("a/**\/b" matches "a/b")
 *   ?      one character except "/"
 *   [abc] [a-z] [!a]   character classes
 *   {a,b}  choice (may nest)
 *   \x     x literally
 * Extglobs ("!(..)", "@(..)", "+(..)") and a leading "!" are refused at load.
 * A value with a "." or ".." path segment never matches (as in picomatch,
 * wildcards do not match them): it fails an allow rule, and in a deny or ask
 * rule it counts as matching (see `dotSegmentReason`), so "/etc/./passwd"
 * cannot slip past a deny on "/etc/**". For paths, the `path` matcher is the
 * one that normalises.
 */
import { RE2JS } from 're2js';
import { classEnd, globProblem } from '../config/glob.js';

const SPECIAL = /[\\^$.|?*+()[\]{}]/g;
const quote = (s: string): string => s.replace(SPECIAL, '\\$&');

/** Translates a glob to an RE2 pattern (unanchored; the caller full-matches). Throws on unsupported syntax. */
export function globToRe2(glob: string): string {
  const problem = globProblem(glob);
  if (problem !== undefined) throw new Error(problem);
  if (glob.startsWith('!')) throw new Error('a leading "!" (negation) is not supported in argument globs; use a deny rule');
  let out = '';
  let depth = 0;
  let i = 0;
  const atSegmentStart = (k: number) => k === 0 || glob[k - 1] === '/';
  while (i < glob.length) {
    const c = glob[i] as string;
    if (c === '\\') {
      const next = glob[i + 1];
      if (next === undefined) throw new Error('a trailing "\\" escapes nothing');
      out += quote(next);
      i += 2;
    } else if (c === '*') {
      let n = 1;
      while (glob[i + n] === '*') n++;
      const end = i + n;
      if (glob[end] === '(') throw new Error('extglobs like "*(..)" are not supported in argument globs; use regex');
      if (n >= 2 && atSegmentStart(i) && (end === glob.length || glob[end] === '/')) {
        if (end === glob.length) {
          // "**" at the end: the rest at any depth; "src/**" also matches "src" itself.
          out = i === 0 ? '.*' : `${out.slice(0, -1)}(?:/.*)?`;
          i = end;
        } else {
          // "**/": zero or more whole segments.
          out += '(?:[^/]*/)*';
          i = end + 1;
        }
      } else {
        out += '[^/]*';
        i = end;
      }
    } else if (c === '?') {
      if (glob[i + 1] === '(') throw new Error('extglobs like "?(..)" are not supported in argument globs; use regex');
      out += '[^/]';
      i++;
    } else if (c === '[') {
      // The class ends where the load check reads its end: "]" first is a member, "\x" is x (also "\]").
      const close = classEnd(glob, i);
      if (typeof close === 'string') throw new Error(close);
      let j = i + 1;
      const negate = glob[j] === '!' || glob[j] === '^';
      if (negate) j++;
      let cls = '';
      while (j < close) {
        const posix = glob.startsWith('[:', j) ? glob.indexOf(':]', j + 2) : -1;
        if (posix !== -1) {
          // "[:alpha:]" as picomatch and RE2 both read it; an unknown name fails to compile (refused at load).
          const name = glob.slice(j + 2, posix);
          if (!/^[a-z]+$/.test(name)) throw new Error(`"[:${name}:]" is not a character class name (write "\\[" for a literal "[")`);
          cls += `[:${name}:]`;
          j = posix + 2;
          continue;
        }
        const escaped = glob[j] === '\\';
        const ch = glob[escaped ? j + 1 : j] as string;
        j += escaped ? 2 : 1;
        // An unescaped "-" makes a range; anything RE2 reads specially in a class is quoted.
        cls += ch === '-' && !escaped ? '-' : /[\\\]^[-]/.test(ch) ? `\\${ch}` : ch;
      }
      // A class never matches "/" (it does not cross segments).
      out += negate ? `[^/${cls}]` : `[${cls}]`;
      i = close + 1;
    } else if (c === '{') {
      depth++;
      out += '(?:';
      i++;
    } else if (c === ',' && depth > 0) {
      out += '|';
      i++;
    } else if (c === '}' && depth > 0) {
      depth--;
      out += ')';
      i++;
    } else if ((c === '@' || c === '+' || c === '!') && glob[i + 1] === '(') {
      throw new Error(`extglobs like "${c}(..)" are not supported in argument globs; use regex`);
    } else {
      out += quote(c);
      i++;
    }
  }
  return out;
}

const DOT_SEGMENT = /(?:^|\/)\.{1,2}(?:\/|$)/;

/** Why a glob cannot judge `value` (it has a "." or ".." segment), or undefined when it can. */
export function dotSegmentReason(value: unknown): string | undefined {
  return typeof value === 'string' && DOT_SEGMENT.test(value) ? 'a "." or ".." path segment, which globs do not judge (use the path matcher)' : undefined;
}

/** Compiles an argument glob to a total, linear-time test. Throws on unsupported syntax. */
export function compileArgGlob(glob: string): (value: string) => boolean {
  // DOTALL: "**" becomes ".*", which must cross a newline too (else "/etc/**" in a deny rule misses "/etc/a\nb").
  const re = RE2JS.compile(globToRe2(glob), RE2JS.DOTALL);
  return (value) => !DOT_SEGMENT.test(value) && re.matches(value);
}
