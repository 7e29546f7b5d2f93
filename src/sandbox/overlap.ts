/**
 * What a sandbox may never see: the gateway's own configuration and state,
 * the keychain's files and the users' keys; and what it may never write:
 * gatehouse's own code, the users' homes and what runs code in them. A workspace (or --rw/--ro path)
 * that contains one of them, or lies inside one, would let the agent rewrite
 * its own policy, plant a registry command that runs outside at the next
 * start, or read signing keys. Checked before anything starts (exit 2).
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { packageRoot, type Dirs } from '../config/paths.js';
import { GatehouseError } from '../errors.js';

export interface Protected {
  /** What it is, for the message. */
  what: string;
  path: string;
  /** Only writing is refused: a sandbox may see it read-only. */
  writeOnly?: boolean;
  /** Only the path itself (or a parent of it) clashes, not a path inside it. */
  exact?: boolean;
  /** A folder inside that may hold exposed paths (strictly below it): the agents' own homes in the state directory. */
  except?: string;
}

export interface Exposed {
  flag: '--workspace' | '--rw' | '--ro' | '--home';
  path: string;
}

/**
 * Canonical form of a path that may not exist yet: its nearest existing ancestor resolved, the rest appended.
 * `seen`: what each path resolved to (or null: it did not) within one check, so paths sharing ancestors
 * (~/.aws, ~/.kube… all climb to ~) resolve each of them once; the same answers, read once.
 */
export function canonical(path: string, seen?: Map<string, string | null>): string {
  let head = resolve(path);
  const tail: string[] = [];
  for (;;) {
    const real = seen === undefined ? realOrNull(head) : seen.has(head) ? seen.get(head)! : realOrNull(head);
    seen?.set(head, real);
    if (real !== null) return join(real, ...tail.reverse());
    const up = dirname(head);
    if (up === head) return resolve(path);
    tail.push(basename(head));
    head = up;
  }
}

function realOrNull(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

/** Where agents' own homes are kept by default (`gatehouse run --home`): `<state>/homes/<agent>`. */
export function agentHomesDir(state: string): string {
  return join(state, 'homes');
}

/** True when `inner` is `outer` or lies below it (on segment boundaries: /a is not inside /ab). */
export function within(inner: string, outer: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep) && rel !== '..');
}

/** Secrets in a home directory: never visible to a sandbox, not even read-only. */
const HOME_SECRETS: Array<[string, string]> = [
  ['.ssh', 'SSH keys'],
  ['.gnupg', 'GnuPG keys'],
  ['.local/share/keyrings', "the keychain's files"],
  ['.netrc', 'netrc credentials'],
  ['.git-credentials', 'git credentials'],
  ['.npmrc', 'npm tokens'],
  ['.pypirc', 'PyPI tokens'],
  ['.aws', 'AWS credentials'],
  ['.azure', 'Azure credentials'],
  ['.kube', 'Kubernetes credentials'],
  ['.docker', 'Docker credentials'],
  ['.config/gcloud', 'Google Cloud credentials'],
  ['.config/gh', 'GitHub CLI tokens'],
  ['.pgpass', 'PostgreSQL passwords'],
  ['.my.cnf', 'MySQL passwords'],
];

/** What runs code for the user later (shells, git, systemd, autostart, ~/.local/bin): never writable by a sandbox. */
const HOME_CONFIG: Array<[string, string]> = [
  ['.config', 'user configuration (git, systemd units, autostart)'],
  ['.local', 'user programs and data (~/.local/bin)'],
  ['.gitconfig', 'git configuration'],
  ['.bashrc', 'a shell start-up file'],
  ['.bash_profile', 'a shell start-up file'],
  ['.bash_login', 'a shell start-up file'],
  ['.bash_logout', 'a shell start-up file'],
  ['.profile', 'a shell start-up file'],
  ['.zshrc', 'a shell start-up file'],
  ['.zshenv', 'a shell start-up file'],
  ['.zprofile', 'a shell start-up file'],
  ['.zlogin', 'a shell start-up file'],
  ['.zlogout', 'a shell start-up file'],
  ['bin', 'programs on your PATH (~/bin)'],
  ['.claude', "an agent's settings and hooks"],
  ['.codex', "an agent's settings"],
  ['.cargo', 'Rust toolchain and programs on your PATH'],
  ['.rustup', 'Rust toolchains'],
  ['.pyenv', 'Python versions on your PATH'],
  ['.nvm', 'Node versions on your PATH'],
  ['.volta', 'Node versions on your PATH'],
  ['.bun', 'programs on your PATH'],
  ['.deno', 'programs on your PATH'],
  ['.oh-my-zsh', 'shell plugins'],
  ['.tmux.conf', 'tmux configuration (runs commands)'],
  ['.gdbinit', 'gdb start-up commands'],
  ['.vimrc', 'editor start-up commands'],
  ['.vim', 'editor plugins'],
  ['.emacs', 'editor start-up code'],
  ['.emacs.d', 'editor start-up code'],
  ['.ipython', 'IPython start-up scripts'],
];

/** A shell that logs nobody in: accounts with one have no one who works in their home later. */
const NO_LOGIN = /(?:^|\/)(?:nologin|false|sync|halt|shutdown)$/;

/**
 * Home directories whose owners may later work outside the sandbox: ours
 * ($HOME), the user who ran sudo (sudo resets HOME to /root), and every
 * account in /etc/passwd that can log in (root's, those under /home, and
 * service accounts with a shell, e.g. postgres in /var/lib/postgresql).
 */
export function homeDirectories(env: NodeJS.ProcessEnv = process.env, passwd = '/etc/passwd'): string[] {
  const homes = new Set<string>([env.HOME && env.HOME !== '' ? env.HOME : homedir()]);
  let text = '';
  try {
    text = readFileSync(passwd, 'utf8');
  } catch {
    // No passwd file (a minimal container): $HOME alone.
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    const [name, , uid, , , home, shell] = f;
    if (home === undefined || home === '' || home === '/' || !home.startsWith('/')) continue;
    const login = shell !== undefined && shell !== '' && !NO_LOGIN.test(shell);
    if (name === env.SUDO_USER || uid === '0' || home.startsWith('/home/') || login) homes.add(home);
  }
  return [...homes];
}

/** The paths no sandbox may see (or, `writeOnly`, may not write), for the gateway whose directories are `dirs`. */
export function protectedPaths(dirs: Dirs, env: NodeJS.ProcessEnv = process.env, homes: string[] = homeDirectories(env)): Protected[] {
  const home = env.HOME && env.HOME !== '' ? env.HOME : homedir();
  const dataHome = env.XDG_DATA_HOME && env.XDG_DATA_HOME !== '' ? env.XDG_DATA_HOME : join(home, '.local', 'share');
  const list: Protected[] = [
    { what: 'the gateway state directory (signing keys, audit log, sockets)', path: dirs.state, except: agentHomesDir(dirs.state) },
    { what: 'the policies in use', path: dirs.policies },
    { what: 'the registry in use', path: dirs.registry },
    { what: "the keychain's files", path: join(dataHome, 'keyrings') },
  ];
  // Gatehouse's own code, the modules it loads and the node that runs it: the
  // agent may read them, but what it writes there would run outside, as us.
  const root = packageRoot();
  list.push({ what: "gatehouse's own code (and its sandbox launcher)", path: root, writeOnly: true });
  for (let d = dirname(root); ; d = dirname(d)) {
    const nm = join(d, 'node_modules');
    if (existsSync(nm)) list.push({ what: 'modules gatehouse loads', path: nm, writeOnly: true });
    if (dirname(d) === d) break;
  }
  list.push({ what: 'the node binary that runs gatehouse', path: process.execPath, writeOnly: true });
  for (const h of homes) {
    list.push({ what: `a home directory (${h})`, path: h, writeOnly: true, exact: true });
    for (const [rel, what] of HOME_SECRETS) list.push({ what, path: join(h, rel) });
    for (const [rel, what] of HOME_CONFIG) list.push({ what, path: join(h, rel), writeOnly: true });
  }
  return list;
}

/**
 * Every overlap between what the sandbox would see and what it must not, as
 * one message per overlap; empty when there is none. A `writeOnly` path may
 * be seen read-only; an `exact` one (a home directory) only clashes with a
 * writable path that is it or contains it, not with one inside it.
 */
export function overlaps(exposed: Exposed[], prot: Protected[]): string[] {
  const problems: string[] = [];
  // Identities within this one check: the ~150 protected paths share their ancestors (/, /root, ~/.config…).
  const ids = new Map<string, string | undefined>();
  const reals = new Map<string, string | null>();
  // Each protected path is resolved once, when first compared: a read-only exposure skips the write-only ones
  // (two thirds of them), so a connector's package folder costs a third of the lookups.
  const resolved: ({ c: string; qChain: string[]; qSelf: string | undefined; except: string | undefined } | undefined)[] = [];
  const resolvedAt = (i: number, q: Protected) => {
    let r = resolved[i];
    if (r === undefined) {
      const c = canonical(q.path, reals);
      const qChain = identities(c, ids);
      const own = identity(c, ids);
      // The path's own identity when it exists (else its chain starts at the nearest existing ancestor).
      r = { c, qChain, qSelf: own !== undefined && qChain[0] === own ? own : undefined, except: q.except === undefined ? undefined : canonical(q.except, reals) };
      resolved[i] = r;
    }
    return r;
  };
  for (const e of exposed) {
    const p = canonical(e.path, reals);
    const chain = identities(p, ids);
    const self = identity(p, ids);
    for (const [i, q] of prot.entries()) {
      if (q.writeOnly === true && e.flag === '--ro') continue;
      const { c, qChain, qSelf, except } = resolvedAt(i, q);
      if (except !== undefined && p !== except && within(p, except)) continue;
      const how = q.writeOnly === true ? ', read-write' : '';
      // By name first; then by identity, which sees the same directory reached through a bind mount.
      if (c === p || (self !== undefined && self === qSelf)) problems.push(`${e.flag} ${e.path} is ${q.what}${how}`);
      else if (within(c, p) || (self !== undefined && qChain.includes(self))) problems.push(`${e.flag} ${e.path} contains ${q.what} (${q.path})${how}`);
      else if (q.exact !== true && (within(p, c) || (qSelf !== undefined && chain.includes(qSelf)))) problems.push(`${e.flag} ${e.path} is inside ${q.what} (${q.path})${how}`);
    }
  }
  return problems;
}

/** "dev:ino" of an existing path, else undefined; read once per path for one check (`seen`). */
function identity(path: string, seen: Map<string, string | undefined>): string | undefined {
  if (seen.has(path)) return seen.get(path);
  const id = identityNow(path);
  seen.set(path, id);
  return id;
}

function identityNow(path: string): string | undefined {
  try {
    // A missing path (most protected ones: ~/.aws, ~/.pgpass…) answers undefined without an exception; other errors still throw.
    const st = statSync(path, { bigint: true, throwIfNoEntry: false });
    return st === undefined ? undefined : `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** The identities of a path and of each of its ancestors that exist, the path's own first. */
function identities(path: string, seen: Map<string, string | undefined>): string[] {
  const out: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    const id = identity(p, seen);
    if (id !== undefined) out.push(id);
    if (dirname(p) === p) return out;
  }
}

/** Throws CONFIG_INVALID (exit 2) naming each overlap and how to fix it. */
export function assertNoOverlap(exposed: Exposed[], prot: Protected[]): void {
  const problems = overlaps(exposed, prot);
  if (problems.length === 0) return;
  const lines = [
    'refusing to start: the sandbox would see what must stay outside it:',
    ...problems.map((p) => `  - ${p}`),
    'Run the agent in a project directory that holds none of these (e.g. --workspace ./repo), ' +
      'or move the gateway state, policies and registry elsewhere (--state, --policies, --registry); ' +
      'install gatehouse outside the workspace (npm install -g).',
  ];
  throw new GatehouseError('CONFIG_INVALID', lines.join('\n'), { details: { lines } });
}
