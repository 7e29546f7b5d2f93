/**
 * What a sandbox may never see: the gateway's own configuration and state,
 * the keychain's files and the user's keys. A workspace (or --rw/--ro path)
 * that contains one of them, or lies inside one, would let the agent rewrite
 * its own policy, plant a registry command that runs outside at the next
 * start, or read signing keys. Checked before anything starts (exit 2).
 */
import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { Dirs } from '../config/paths.js';
import { GatehouseError } from '../errors.js';

export interface Protected {
  /** What it is, for the message. */
  what: string;
  path: string;
}

export interface Exposed {
  flag: '--workspace' | '--rw' | '--ro';
  path: string;
}

/** Canonical form of a path that may not exist yet: its nearest existing ancestor resolved, the rest appended. */
export function canonical(path: string): string {
  let head = resolve(path);
  const tail: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(head), ...tail.reverse());
    } catch {
      const up = dirname(head);
      if (up === head) return resolve(path);
      tail.push(basename(head));
      head = up;
    }
  }
}

/** True when `inner` is `outer` or lies below it (on segment boundaries: /a is not inside /ab). */
export function within(inner: string, outer: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep) && rel !== '..');
}

/** The paths no sandbox may see, for the gateway whose directories are `dirs`. */
export function protectedPaths(dirs: Dirs, env: NodeJS.ProcessEnv = process.env): Protected[] {
  const home = env.HOME && env.HOME !== '' ? env.HOME : homedir();
  const dataHome = env.XDG_DATA_HOME && env.XDG_DATA_HOME !== '' ? env.XDG_DATA_HOME : join(home, '.local', 'share');
  return [
    { what: 'the gateway state directory (signing keys, audit log, sockets)', path: dirs.state },
    { what: 'the policies in use', path: dirs.policies },
    { what: 'the registry in use', path: dirs.registry },
    { what: "the keychain's files", path: join(dataHome, 'keyrings') },
    { what: 'SSH keys', path: join(home, '.ssh') },
    { what: 'GnuPG keys', path: join(home, '.gnupg') },
  ];
}

/**
 * Every overlap between what the sandbox would see and what it must not, as
 * one message per overlap; empty when there is none. `$HOME` (or a parent
 * of it) may be read-only at most.
 */
export function overlaps(exposed: Exposed[], prot: Protected[], home: string): string[] {
  const problems: string[] = [];
  const homeC = canonical(home);
  for (const e of exposed) {
    const p = canonical(e.path);
    for (const q of prot) {
      const c = canonical(q.path);
      if (c === p) problems.push(`${e.flag} ${e.path} is ${q.what}`);
      else if (within(c, p)) problems.push(`${e.flag} ${e.path} contains ${q.what} (${q.path})`);
      else if (within(p, c)) problems.push(`${e.flag} ${e.path} is inside ${q.what} (${q.path})`);
    }
    if (e.flag !== '--ro' && within(homeC, p)) problems.push(`${e.flag} ${e.path} ${p === homeC ? 'is' : 'contains'} your home directory, read-write`);
  }
  return problems;
}

/** Throws CONFIG_INVALID (exit 2) naming each overlap and how to fix it. */
export function assertNoOverlap(exposed: Exposed[], prot: Protected[], home: string): void {
  const problems = overlaps(exposed, prot, home);
  if (problems.length === 0) return;
  throw new GatehouseError(
    'CONFIG_INVALID',
    `refusing to start: the sandbox would see what must stay outside it:\n  - ${problems.join('\n  - ')}\n` +
      'Run the agent in a project directory that holds none of these (e.g. --workspace ./repo), ' +
      'or move the gateway state, policies and registry elsewhere (--state, --policies, --registry).',
  );
}
