/**
 * The launcher takes canonical paths and never re-resolves them (issue #12,
 * item 3, the launcher's side). `gatehouse run` checks the workspace, --ro and
 * --rw paths against the gateway's own files (state, keys, policies), then
 * hands them to the launcher. An agent in another sandbox that can write a
 * parent of such a path can flip a component between a directory and a
 * symlink (renameat2 RENAME_EXCHANGE): a launcher that called realpath()
 * again would mount the link's target, e.g. the state directory. It refuses
 * any path that is not already canonical (125) and opens bind sources without
 * following symlinks (bind-race.int.test.ts), so it mounts what was checked or
 * nothing.
 */
import { execFileSync, spawn } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAUNCHER_EXIT } from '../../src/sandbox/launcher.js';
import { BUILD, IS_ROOT, PORT, PROBE, launch, runToEnd, scratch, type Finished, type Scratch } from '../helpers/sandbox-launch.js';

const ASAN = join(BUILD, 'gatehouse-sandbox-asan');
const NOT_CANONICAL = /is not canonical \(a symlink or \.\/\.\. in it\): give its real path/;
let s: Scratch;

beforeAll(async () => {
  s = await scratch('gh-canonical-');
});
afterAll(async () => s.close());

/** As root the agent writes as the owner of its workspace: make that a user, not root. */
function chownIfRoot(path: string): void {
  if (IS_ROOT) execFileSync('chown', ['-R', '65534:65534', path]);
}

/** A fresh directory under the scratch root (0755). */
function dir(...parts: string[]): string {
  const d = join(s.root, ...parts);
  mkdirSync(d, { recursive: true, mode: 0o755 });
  return d;
}

describe('the launcher refuses paths that are not canonical instead of resolving them', () => {
  it('a --rw path through a symlink is refused, not resolved', async () => {
    const ws = dir('ws-rw');
    const real = dir('real-rw');
    const link = join(s.root, 'link-rw');
    symlinkSync(real, link);
    const r = await runToEnd(s, ws, ['--rw', link], ['/bin/sh', '-c', `echo pwned > ${link}/written; echo pwned > ${real}/written`]);
    expect(r.code).toBe(LAUNCHER_EXIT.launcherError);
    expect(r.stderr).toContain(`--rw ${link} is not canonical`);
    expect(r.stderr).toMatch(NOT_CANONICAL);
    expect(r.stderr).toContain(`give its real path, ${real}`);
    expect(() => lstatSync(join(real, 'written'))).toThrow();
  });

  it('a --ro path, a --workspace and a --protect/--allow-write through a symlink or with .. are refused too; the canonical ones run', async () => {
    const ws = dir('ws-more');
    writeFileSync(join(ws, '.bashrc'), 'user\n');
    const ro = dir('ro-more');
    const roLink = join(s.root, 'ro-link');
    symlinkSync(ro, roLink);
    const wsLink = join(s.root, 'ws-link');
    symlinkSync(ws, wsLink);
    chownIfRoot(ws);
    const cases: [string, string[], string][] = [
      [ws, ['--ro', roLink], `--ro ${roLink} is not canonical`],
      [ws, ['--ro', `${ro}/../ro-more`], `--ro ${ro}/../ro-more is not canonical`],
      [wsLink, [], `--workspace ${wsLink} is not canonical`],
      [`${ws}/.`, [], `--workspace ${ws}/. is not canonical`],
      [ws, ['--allow-write', join(wsLink, '.bashrc')], `--allow-write ${join(wsLink, '.bashrc')} is not canonical`],
      [ws, ['--protect', join(wsLink, '.bashrc')], `--protect ${join(wsLink, '.bashrc')} is not canonical`],
    ];
    for (const [workspace, flags, message] of cases) {
      const r = await runToEnd(s, workspace, flags, [PROBE, 'whoami']);
      expect(r.code, message).toBe(LAUNCHER_EXIT.launcherError);
      expect(r.stderr, message).toContain(message);
      expect(r.stdout, message).toBe('');
    }
    // Control: the same paths given canonically (a trailing slash is fine).
    const ok = await runToEnd(s, `${ws}/`, ['--ro', `${ro}/`, '--allow-write', join(ws, '.bashrc')], [PROBE, 'whoami']);
    expect(ok.stderr).not.toMatch(NOT_CANONICAL);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`cwd=${ws}`);
  });
});

describe("another sandbox's agent flips a parent of a --ro path between a directory and a symlink", () => {
  /**
   * arena/ is the workspace of sandbox A (the attacker); arena/share/data is
   * given to sandbox B as --ro; arena/lnk is a symlink to "state", which
   * stands for the gateway's state directory. A swaps share and lnk.
   */
  function arena(name: string): { arena: string; data: string; state: string } {
    const a = dir(name, 'arena');
    const data = dir(name, 'arena', 'share', 'data');
    writeFileSync(join(data, 'marker'), 'shared\n');
    const state = dir(name, 'state', 'data');
    writeFileSync(join(state, 'marker'), 'STATE\n');
    symlinkSync(join(s.root, name, 'state'), join(a, 'lnk'));
    chownIfRoot(a);
    return { arena: a, data, state };
  }

  /** Sandbox A's agent: swaps arena/share and arena/lnk for `ms` (one swap at 0). */
  function flip(a: string, ms: number): Promise<Finished> {
    return runToEnd(s, a, [], [PROBE, 'flip', 'share', 'lnk', String(ms)]);
  }

  /** Puts share back as the directory (after an odd number of swaps). */
  function settle(a: string): void {
    if (!lstatSync(join(a, 'share')).isSymbolicLink()) return;
    renameSync(join(a, 'share'), join(a, 'tmp'));
    renameSync(join(a, 'lnk'), join(a, 'share'));
    renameSync(join(a, 'tmp'), join(a, 'lnk'));
  }

  /** B's command: the --ro path's marker, and the state's if the launcher mounted it (at its own path). */
  const readMarker = (data: string, state: string) => ['/bin/sh', '-c', `cat ${data}/marker ${state}/marker 2>/dev/null; true`];

  it('guard: the swap works from inside a sandbox (one RENAME_EXCHANGE makes share the symlink)', async () => {
    const { arena: a } = arena('guard');
    const f = await flip(a, 0);
    expect(f.stdout.trim()).toBe('flips 1');
    expect(lstatSync(join(a, 'share')).isSymbolicLink()).toBe(true);
    settle(a);
    expect(lstatSync(join(a, 'share')).isDirectory()).toBe(true);
  });

  it('flipped before the launch: the launcher refuses the --ro path instead of mounting the link\'s target', async () => {
    const { arena: a, data, state } = arena('before');
    const ws = dir('before', 'ws');
    expect((await flip(a, 0)).stdout.trim()).toBe('flips 1');
    const r = await runToEnd(s, ws, ['--ro', data], readMarker(data, state));
    expect(r.code).toBe(LAUNCHER_EXIT.launcherError);
    expect(r.stderr).toContain(`--ro ${data} is not canonical`);
    expect(r.stdout).not.toContain('STATE');
    settle(a);
  });

  it('flipped while the launcher holds before its binds (ASan test hook): refused, the target is not mounted', async () => {
    const { arena: a, data, state } = arena('held');
    const ws = dir('held', 'ws');
    const args = ['--socket', s.socket, '--port', String(PORT), '--workspace', ws, '--ro', BUILD, '--ro', data, '--', ...readMarker(data, state)];
    const child = spawn(ASAN, args, { env: { ...process.env, GATEHOUSE_SANDBOX_TEST_HOLD_BEFORE_BINDS_MS: '3000' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let flipped: Promise<Finished> | undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (!flipped && stderr.includes('holding before binds')) flipped = flip(a, 0);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
    clearTimeout(timer);
    expect((await flipped)?.stdout.trim()).toBe('flips 1');
    expect(code).toBe(LAUNCHER_EXIT.launcherError);
    expect(stderr).toMatch(/goes through a symlink now/);
    expect(stderr).not.toMatch(/AddressSanitizer|LeakSanitizer|runtime error/);
    expect(stdout).not.toContain('STATE');
    settle(a);
  });

  it("agent flips a parent of another sandbox's --ro path between a directory and a symlink: the launcher never mounts the link's target", async () => {
    // Sandbox A swaps as fast as it can for 4 s; sandbox B is launched again and
    // again meanwhile. Each launch either mounts the real directory or refuses
    // (125, naming why); none may show the state directory's marker.
    const { arena: a, data, state } = arena('loop');
    const ws = dir('loop', 'ws');
    const attacker = launch(s, a, [], [PROBE, 'flip', 'share', 'lnk', '4000']);
    const outcomes = { mounted: 0, refused: 0 };
    for (let i = 0; i < 40 && attacker.child.exitCode === null; i++) {
      const r = await runToEnd(s, ws, ['--ro', data], readMarker(data, state));
      expect(r.stdout, r.stderr).not.toContain('STATE');
      if (r.code === 0) {
        expect(r.stdout).toBe('shared\n');
        outcomes.mounted++;
      } else {
        expect(r.code, r.stderr).toBe(LAUNCHER_EXIT.launcherError);
        expect(r.stderr).toMatch(/is not canonical|goes through a symlink now|No such file or directory|Not a directory/);
        outcomes.refused++;
      }
    }
    const f = await attacker.done;
    expect(f.stdout).toMatch(/^flips [1-9]\d*\n$/);
    expect(outcomes.mounted + outcomes.refused).toBeGreaterThan(0);
    settle(a);
    expect(readFileSync(join(data, 'marker'), 'utf8')).toBe('shared\n');
  }, 60_000);
});
