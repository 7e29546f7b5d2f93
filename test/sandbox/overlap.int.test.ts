/**
 * Gateway configuration and state never inside an agent-visible path (issue
 * #12, item 3). With the defaults (`--workspace .`, `./policies`,
 * `./registry`) an agent run in the wrong directory could rewrite its own
 * policy, plant a registry command that runs outside at the next start, or
 * read the signing keys and `~/.ssh`. `gatehouse run` refuses (exit 2).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonical, homeDirectories, overlaps, protectedPaths, within } from '../../src/sandbox/overlap.js';
import { runCli, startServe, type Serving } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = resolve(import.meta.dirname, '../..');

let base: string;
let home: string;

const cli = (args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) => runCli(args, { cwd, env: { HOME: home, ...env }, timeoutMs: 30_000 });

beforeAll(() => {
  base = tempDir('gh-overlap-');
  home = join(base, 'home');
  mkdirSync(join(home, '.ssh'), { recursive: true });
});

afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('overlap checks (pure)', () => {
  const dirs = () => ({ registry: join(base, 'proj', 'registry'), policies: join(base, 'proj', 'policies'), state: join(home, '.local', 'state', 'gatehouse') });

  it('the list of protected paths is not empty and names state, policies, registry, keyrings and ~/.ssh', () => {
    const list = protectedPaths(dirs(), { HOME: home }, [home]);
    expect(list.length).toBeGreaterThanOrEqual(5);
    expect(list.map((p) => p.path)).toEqual(expect.arrayContaining([dirs().state, dirs().policies, dirs().registry, join(home, '.local', 'share', 'keyrings'), join(home, '.ssh')]));
  });

  it('segment boundaries: /safe is not inside /saf, /safe-evil is not inside /safe', () => {
    expect(within('/a/safe', '/a/saf')).toBe(false);
    expect(within('/a/safe-evil', '/a/safe')).toBe(false);
    expect(within('/a/safe/x', '/a/safe')).toBe(true);
    expect(within('/a/safe', '/a/safe')).toBe(true);
    expect(within('/', '/a')).toBe(false);
    expect(within('/a', '/')).toBe(true);
  });

  it('workspace that holds the policies and registry (gatehouse run in the project directory): two overlaps', () => {
    const p = overlaps([{ flag: '--workspace', path: join(base, 'proj') }], protectedPaths(dirs(), { HOME: home }, [home]));
    expect(p).toEqual([expect.stringMatching(/contains the policies in use/), expect.stringMatching(/contains the registry in use/)]);
  });

  it('--workspace ~ exposes the state directory, ~/.ssh and the keyrings, and is $HOME read-write', () => {
    const p = overlaps([{ flag: '--workspace', path: home }], protectedPaths(dirs(), { HOME: home }, [home])).join('\n');
    expect(p).toMatch(/contains the gateway state directory/);
    expect(p).toMatch(/contains SSH keys/);
    expect(p).toMatch(/contains the keychain's files/);
    expect(p).toMatch(/is a home directory \(.*\), read-write/);
  });

  it('--ro ~ is refused too (it shows ~/.ssh), but a read-only project beside it is fine', () => {
    expect(overlaps([{ flag: '--ro', path: home }], protectedPaths(dirs(), { HOME: home }, [home])).join('\n')).toMatch(/--ro .* contains SSH keys/);
    mkdirSync(join(base, 'docs'), { recursive: true });
    expect(overlaps([{ flag: '--ro', path: join(base, 'docs') }], protectedPaths(dirs(), { HOME: home }, [home]))).toEqual([]);
  });

  it('--rw / contains everything, including $HOME', () => {
    expect(overlaps([{ flag: '--rw', path: '/' }], protectedPaths(dirs(), { HOME: home }, [home])).join('\n')).toMatch(/contains a home directory \(.*\), read-write/);
  });

  it('--rw inside the state directory (e.g. its audit folder) is refused', () => {
    expect(overlaps([{ flag: '--rw', path: join(dirs().state, 'audit') }], protectedPaths(dirs(), { HOME: home }, [home]))).toEqual(expect.arrayContaining([expect.stringMatching(/is inside the gateway state directory/)]));
  });

  it('agent-side symlink to the state directory given as --workspace: resolved, then refused', () => {
    const state = dirs().state;
    mkdirSync(state, { recursive: true });
    const link = join(base, 'innocent-looking');
    symlinkSync(state, link);
    expect(canonical(link)).toBe(state);
    expect(overlaps([{ flag: '--workspace', path: link }], protectedPaths(dirs(), { HOME: home }, [home]))).toEqual(expect.arrayContaining([expect.stringMatching(/innocent-looking is the gateway state directory/)]));
  });
});

describe('what runs outside later is never writable inside (code, homes, user config)', () => {
  const dirs = () => ({ registry: join(base, 'p2', 'registry'), policies: join(base, 'p2', 'policies'), state: join(base, 'p2', 'state') });

  it("agent's workspace holds gatehouse's own code (a project with gatehouse in node_modules): read-write refused, read-only allowed", () => {
    const prot = protectedPaths(dirs(), { HOME: home }, [home]);
    expect(overlaps([{ flag: '--workspace', path: ROOT }], prot).join('\n')).toMatch(/is gatehouse's own code .*read-write/);
    expect(overlaps([{ flag: '--rw', path: join(ROOT, 'native') }], prot).join('\n')).toMatch(/is inside gatehouse's own code/);
    expect(overlaps([{ flag: '--rw', path: join(ROOT, 'node_modules', 'hono') }], prot).join('\n')).toMatch(/inside (gatehouse's own code|modules gatehouse loads)/);
    expect(overlaps([{ flag: '--ro', path: join(ROOT, 'node_modules') }], prot)).toEqual([]);
  });

  it('agent gets the directory of the node binary that runs gatehouse read-write: refused', () => {
    const prot = protectedPaths(dirs(), { HOME: home }, [home]);
    expect(overlaps([{ flag: '--rw', path: dirname(process.execPath) }], prot).join('\n')).toMatch(/contains the node binary that runs gatehouse/);
  });

  it("sudo gatehouse run --workspace /home/alice (HOME=/root): alice's home is refused read-write, her ~/.ssh even read-only", () => {
    const alice = join(base, 'home-alice');
    mkdirSync(join(alice, '.ssh'), { recursive: true });
    const passwd = join(base, 'passwd');
    writeFileSync(passwd, `root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:${alice}:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`);
    const homes = homeDirectories({ HOME: '/root', SUDO_USER: 'alice' }, passwd);
    expect(homes).toEqual(expect.arrayContaining(['/root', alice]));
    expect(homes).not.toContain('/nonexistent');
    const prot = protectedPaths(dirs(), { HOME: '/root' }, homes);
    const ws = overlaps([{ flag: '--workspace', path: alice }], prot).join('\n');
    expect(ws).toMatch(/is a home directory .*read-write/);
    expect(ws).toMatch(/contains SSH keys/);
    expect(overlaps([{ flag: '--ro', path: alice }], prot).join('\n')).toMatch(/contains SSH keys/);
    // A project inside her home is fine.
    mkdirSync(join(alice, 'src', 'proj'), { recursive: true });
    expect(overlaps([{ flag: '--workspace', path: join(alice, 'src', 'proj') }], prot)).toEqual([]);
  });

  it('a service account with a login shell (postgres in /var/lib/postgresql) counts as a home; nologin accounts do not', () => {
    const passwd = join(base, 'passwd-services');
    writeFileSync(passwd, 'root:x:0:0:root:/root:/bin/bash\npostgres:x:105:113:PostgreSQL:/var/lib/postgresql:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nsync:x:4:65534:sync:/bin:/bin/sync\n');
    const homes = homeDirectories({ HOME: '/root' }, passwd);
    expect(homes).toEqual(expect.arrayContaining(['/root', '/var/lib/postgresql']));
    expect(homes).not.toContain('/var/www');
    expect(homes).not.toContain('/bin');
    const prot = protectedPaths(dirs(), { HOME: '/root' }, homes);
    expect(overlaps([{ flag: '--rw', path: '/var/lib/postgresql' }], prot).join('\n')).toMatch(/is a home directory \(\/var\/lib\/postgresql\), read-write/);
    expect(overlaps([{ flag: '--ro', path: '/var/lib' }], prot).join('\n')).toMatch(/contains PostgreSQL passwords/);
  });

  it("--rw ~/.claude, ~/.cargo or ~/bin (an agent's hooks, programs on PATH): refused", () => {
    const prot = protectedPaths(dirs(), { HOME: home }, [home]);
    for (const [rel, what] of [['.claude', /an agent's settings and hooks/], ['.cargo', /programs on your PATH/], ['bin', /programs on your PATH/]] as const) {
      expect(overlaps([{ flag: '--rw', path: join(home, rel) }], prot).join('\n'), rel).toMatch(what);
    }
  });

  it('the state directory reached through a bind mount (a second path to the same directory): refused all the same', () => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root (it bind-mounts a directory)');
    const state = join(base, 'p2', 'state-bound');
    mkdirSync(join(state, 'keys'), { recursive: true });
    const alias = join(base, 'innocent-alias');
    mkdirSync(alias);
    execFileSync('mount', ['--bind', state, alias]);
    try {
      const prot = protectedPaths({ ...dirs(), state }, { HOME: home }, [home]);
      expect(overlaps([{ flag: '--rw', path: alias }], prot).join('\n')).toMatch(/innocent-alias is the gateway state directory/);
      expect(overlaps([{ flag: '--rw', path: join(alias, 'keys') }], prot).join('\n')).toMatch(/keys is inside the gateway state directory/);
    } finally {
      execFileSync('umount', [alias]);
    }
  });

  it('--rw ~/.config or ~/.local/bin (git config, systemd user units, programs on PATH): refused; read-only is fine', () => {
    const prot = protectedPaths(dirs(), { HOME: home }, [home]);
    expect(overlaps([{ flag: '--rw', path: join(home, '.config') }], prot).join('\n')).toMatch(/is user configuration/);
    expect(overlaps([{ flag: '--rw', path: join(home, '.config', 'git') }], prot).join('\n')).toMatch(/is inside user configuration/);
    expect(overlaps([{ flag: '--rw', path: join(home, '.local', 'bin') }], prot).join('\n')).toMatch(/is inside user programs/);
    expect(overlaps([{ flag: '--rw', path: join(home, '.gitconfig') }], prot).join('\n')).toMatch(/is git configuration/);
    expect(overlaps([{ flag: '--ro', path: join(home, '.config', 'git') }], prot)).toEqual([]);
    // Credentials never, not even read-only.
    expect(overlaps([{ flag: '--ro', path: join(home, '.config', 'gh') }], prot).join('\n')).toMatch(/is GitHub CLI tokens/);
  });
});

describe('gatehouse run refuses to expose gateway configuration', () => {
  it('agent run in a directory holding policies/ and registry/ (the defaults): exit 2, naming both, nothing started', async () => {
    const proj = join(base, 'proj-e2e');
    mkdirSync(join(proj, 'policies'), { recursive: true });
    mkdirSync(join(proj, 'registry'), { recursive: true });
    writeFileSync(join(proj, 'policies', 'p.yaml'), 'version: 1\nrules: []\n');
    const state = join(base, 'state-e2e');
    const r = await cli(['run', '--state', state, '--', '/bin/sh', '-c', 'echo RAN'], proj);
    expect(r.code).toBe(2);
    expect(r.stdout).not.toContain('RAN');
    expect(r.stderr).toMatch(/--workspace .*proj-e2e contains the policies in use/);
    expect(r.stderr).toMatch(/contains the registry in use/);
    expect(r.stderr).toMatch(/--workspace \.\/repo/);
    // One overlap a line (our line breaks; each line escaped on its own).
    expect(r.stderr.split('\n').filter((l) => l.startsWith('  - '))).toHaveLength(2);
  });

  it('--workspace ~ : exit 2 (state directory, ~/.ssh, home read-write)', async () => {
    const r = await cli(['run', '--workspace', home, '--policies', join(ROOT, 'policies'), '--registry', join(ROOT, 'registry'), '--', '/bin/true'], base);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/contains SSH keys/);
    expect(r.stderr).toMatch(/is a home directory \(.*\), read-write/);
  });

  describe('attached to a running gatehouse serve', () => {
    let serve: Serving | undefined;
    const state = () => join(base, 'state-serve');
    const servePolicies = () => join(base, 'serve-proj', 'policies');
    beforeAll(async () => {
      mkdirSync(servePolicies(), { recursive: true });
      writeFileSync(join(servePolicies(), 'p.yaml'), 'version: 1\nrules: []\n');
      const reg = join(base, 'serve-registry');
      mkdirSync(reg, { recursive: true });
      serve = await startServe(['--registry', reg, '--policies', servePolicies(), '--state', state()], { HOME: home });
    });
    afterAll(async () => serve?.stop());

    it("workspace holds the serving gateway's policies though run's own flags point elsewhere: exit 2", async () => {
      const elsewhere = join(base, 'elsewhere');
      mkdirSync(join(elsewhere, 'policies'), { recursive: true });
      const r = await cli(['run', '--state', state(), '--workspace', join(base, 'serve-proj'), '--policies', join(elsewhere, 'policies'), '--registry', join(ROOT, 'registry'), '--', '/bin/true'], base);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/serve-proj contains the policies in use/);
    });
  });
});

describe('an agent that can fill the audit disk is pointed out (shared filesystem)', () => {
  it('workspace on the same filesystem as the state: doctor and run warn; on another filesystem: no warning', async () => {
    const ws = join(base, 'ws-disk');
    mkdirSync(ws, { recursive: true });
    const state = join(base, 'state-disk');
    const registry = join(base, 'reg-disk');
    mkdirSync(registry, { recursive: true });
    const same = await cli(['doctor', '--state', state, '--workspace', ws, '--json'], base);
    expect(JSON.parse(same.stdout) as { workspaceSharesStateFilesystem: boolean }).toMatchObject({ workspaceSharesStateFilesystem: true });
    const sameText = await cli(['doctor', '--state', state, '--workspace', ws], base);
    expect(sameText.stdout).toMatch(/Warning: the gateway state .* shares a filesystem with .*ws-disk/);
    // /dev/shm is a tmpfs of its own.
    const other = await cli(['doctor', '--state', state, '--workspace', '/dev/shm', '--json'], base);
    expect(JSON.parse(other.stdout) as { workspaceSharesStateFilesystem: boolean }).toMatchObject({ workspaceSharesStateFilesystem: false });

    const run = await cli(['run', '--state', state, '--workspace', ws, '--policies', join(ROOT, 'policies'), '--registry', registry, '--', '/bin/true'], base);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/gatehouse run: warning: the gateway state .* shares a filesystem with .*ws-disk.*audit log's headroom/);
  });
});
