/**
 * The `path` argument matcher: a filesystem path compared as a path, not as a string.
 *
 * `prefix: /safe` is a string test: "/safe/../etc/passwd" and "/safe-evil" pass it.
 * Here the value is first normalised the POSIX way, without touching the disk
 * (the gateway does not see the tool's filesystem):
 *   - "//" and a trailing "/" collapse, "." segments are dropped;
 *   - refused (the value "cannot be judged"): not a string, empty, relative
 *     (it depends on the tool's working directory, which the gateway does not
 *     know), a ".." segment (resolving it without the filesystem is wrong when
 *     a segment is a symlink), a NUL byte, a backslash (a Windows separator or
 *     an escape: either way not what we compare), and a percent-encoded ".",
 *     "/", "\" or NUL (the matcher does not decode; a tool that does would see
 *     another path).
 * Then `under: DIR` holds when the path is DIR or inside it, on segment
 * boundaries ("/safe" covers "/safe" and "/safe/x", not "/safe-evil"), and
 * `glob: G` runs the argument glob (RE2) on the normalised path.
 *
 * A value that cannot be judged never satisfies an allow rule, and makes a deny
 * or ask rule's check hold (fail closed; see testArgRule). Symlinks inside an
 * allowed directory are the tool's (or the sandbox's) business: this is string
 * normalisation only.
 */
import { compileArgGlob } from './arg-glob.js';
import type { ArgCheck } from './types.js';

export type NormalizedPath = { ok: true; path: string } | { ok: false; reason: string };

// %2e ".", %2f "/", %5c "\", %00 NUL, in any case.
const ENCODED = /%(?:2e|2f|5c|00)/i;

/** Normalises an absolute POSIX path, or says why the value is refused. Total: never throws. */
export function normalizePath(value: unknown): NormalizedPath {
  if (typeof value !== 'string') return { ok: false, reason: 'is not a string' };
  if (value === '') return { ok: false, reason: 'is empty' };
  if (value.includes('\0')) return { ok: false, reason: 'has a NUL byte' };
  if (value.includes('\\')) return { ok: false, reason: 'has a backslash (paths are POSIX: "/" is the only separator)' };
  if (ENCODED.test(value)) return { ok: false, reason: 'has a percent-encoded ".", "/", "\\" or NUL (the matcher does not decode)' };
  if (!value.startsWith('/')) return { ok: false, reason: 'is relative (the gateway does not know the tool\'s working directory)' };
  const segments: string[] = [];
  for (const seg of value.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return { ok: false, reason: 'has a ".." segment' };
    segments.push(seg);
  }
  return { ok: true, path: `/${segments.join('/')}` };
}

/** Whether normalised `path` is `dir` or inside it (segment boundaries). Both already normalised. */
export function isUnder(path: string, dir: string): boolean {
  if (dir === '/') return true;
  return path === dir || path.startsWith(`${dir}/`);
}

/** The `path:` matcher as written in a policy file (validated by the schema). */
export interface PathMatcherSpec {
  /** The path must be one of these directories or inside one. */
  under?: string | string[];
  /** The normalised path must match this argument glob. */
  glob?: string;
}

/** Checks a directory given in `under:` at load; returns its normalised form or throws with the reason. */
export function checkUnderDir(dir: string): string {
  const n = normalizePath(dir);
  if (!n.ok) throw new Error(`under: "${dir}" ${n.reason}; give an absolute directory like /repo/src`);
  return n.path;
}

/** Checks a `glob:` at load: it matches absolute paths, so it starts with "/" (or "**"). */
export function checkPathGlob(glob: string): (path: string) => boolean {
  if (!glob.startsWith('/') && !glob.startsWith('**')) throw new Error(`glob: "${glob}" must start with "/" (or "**"): it is matched against the normalised absolute path`);
  return compileArgGlob(glob);
}

const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** Compiles a validated `path:` matcher into one check. */
export function compilePathCheck(spec: PathMatcherSpec): ArgCheck {
  const dirs = spec.under === undefined ? undefined : (Array.isArray(spec.under) ? spec.under : [spec.under]).map(checkUnderDir);
  const glob = spec.glob === undefined ? undefined : checkPathGlob(spec.glob);
  const parts: string[] = [];
  if (dirs !== undefined) parts.push(`under ${show(dirs.length === 1 ? dirs[0] : dirs)}`);
  if (spec.glob !== undefined) parts.push(`glob ${show(spec.glob)}`);
  return {
    describe: `path ${parts.join(' and ')}`,
    test: (v) => {
      const n = normalizePath(v);
      if (!n.ok) return false;
      if (dirs !== undefined && !dirs.some((d) => isUnder(n.path, d))) return false;
      return glob === undefined || glob(n.path);
    },
    // An absent argument is not suspicious (the rule just does not apply); anything else that fails to normalise is.
    unjudgeable: (v) => {
      if (v === undefined) return undefined;
      const n = normalizePath(v);
      return n.ok ? undefined : `path ${n.reason}`;
    },
  };
}
