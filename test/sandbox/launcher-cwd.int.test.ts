/**
 * `--cwd DIR`: a stdio MCP server (connector) runs confined with a private
 * writable workspace, but starts in its own package directory, bound with
 * --ro. The launcher takes a cwd only where the new root has it at the same
 * path (the workspace, or inside it or a --ro/--rw/--home path), only when
 * canonical like its other paths, and the directory stays read-only.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAUNCHER_EXIT } from '../../src/sandbox/launcher.js';
import { BUILD, IS_ROOT, PORT, PROBE, runToEnd, scratch, type Scratch } from '../helpers/sandbox-launch.js';

const ASAN = join(BUILD, 'gatehouse-sandbox-asan');
const USAGE = /^gatehouse-sandbox: usage error: /m;
let s: Scratch;
let ws: string; // the private workspace
let pkg: string; // the server's package, given as --ro

beforeAll(async () => {
  s = await scratch('gh-cwd-');
  ws = dir('ws');
  pkg = dir('pkg');
  dir('pkg', 'lib');
  // Same name in both: which one runs shows which directory a relative COMMAND is resolved in.
  writeFileSync(join(pkg, 'server.sh'), '#!/bin/sh\necho "package $(pwd)"\n', { mode: 0o755 });
  writeFileSync(join(ws, 'server.sh'), '#!/bin/sh\necho WORKSPACE\n', { mode: 0o755 });
  // As root the agent writes as the owner of its workspace: make that a user, not root.
  if (IS_ROOT) execFileSync('chown', ['-R', '65534:65534', ws]);
});
afterAll(async () => s.close());

/** A directory under the scratch root (0755). */
function dir(...parts: string[]): string {
  const d = join(s.root, ...parts);
  mkdirSync(d, { recursive: true, mode: 0o755 });
  return d;
}

describe('--cwd: the command starts in its own directory, not the workspace', () => {
  it('a connector given --cwd runs in that directory (/bin/pwd), for each kind of bound root', async () => {
    const rw = dir('rw', 'sub');
    const cases: [string[], string][] = [
      [['--ro', pkg], pkg],
      [['--ro', pkg], join(pkg, 'lib')],
      [['--rw', join(s.root, 'rw')], rw],
      [[], ws],
      [[], `${ws}/`], // a trailing slash is fine
    ];
    for (const [flags, cwd] of cases) {
      const r = await runToEnd(s, ws, [...flags, '--cwd', cwd], ['/bin/pwd']);
      expect(r.code, `${cwd}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toBe(`${cwd.replace(/\/$/, '')}\n`);
    }
    // Control: without --cwd the workspace stays the cwd.
    const r = await runToEnd(s, ws, ['--ro', pkg], ['/bin/pwd']);
    expect(r.stdout).toBe(`${ws}\n`);
  });

  it('a relative COMMAND runs from --cwd, not a same-named file in the workspace', async () => {
    const r = await runToEnd(s, ws, ['--ro', pkg, '--cwd', pkg], ['./server.sh']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`package ${pkg}\n`);
  });

  it('a server in a --ro --cwd still cannot write its package directory (EROFS), only the workspace', async () => {
    const script = `echo x > ./written; echo "pkg=$?"; echo y > ${ws}/written; echo "ws=$?"`;
    const r = await runToEnd(s, ws, ['--ro', pkg, '--cwd', pkg], ['/bin/sh', '-c', script]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^pkg=[1-9]\d*\nws=0\n$/);
    expect(r.stderr).toMatch(/Read-only file system/);
    expect(existsSync(join(pkg, 'written'))).toBe(false);
    expect(existsSync(join(ws, 'written'))).toBe(true);
  });
});

describe('--cwd is refused where the sandbox does not have it, or as given through a symlink', () => {
  it('a --cwd outside every bound path is a usage error (125): not a host dir, not a system dir, not a name-prefix sibling', async () => {
    const outside = dir('outside');
    const sibling = dir('pkg-evil'); // shares the bytes "…/pkg" with the --ro path, not its components
    const cases: [string[], string][] = [
      [['--cwd', outside], `--cwd ${outside} is outside`],
      [['--cwd', '/usr'], '--cwd /usr is outside'],
      [['--cwd', sibling], `--cwd ${sibling} is outside`],
      [['--cwd', s.root], `--cwd ${s.root} is outside`], // a parent of the binds
      [['--cwd', 'pkg'], '--cwd needs an absolute path'],
      [['--cwd', pkg, '--cwd', pkg], '--cwd given twice'],
    ];
    for (const [flags, message] of cases) {
      const r = await runToEnd(s, ws, ['--ro', pkg, ...flags], [PROBE, 'whoami']);
      expect(r.code, message).toBe(LAUNCHER_EXIT.launcherError);
      expect(r.stderr, message).toMatch(USAGE);
      expect(r.stderr, message).toContain(message);
      expect(r.stdout, message).toBe('');
    }
  });

  it('a --cwd through a symlink or with .. is refused (125, not canonical), not resolved', async () => {
    const link = join(s.root, 'pkg-link');
    symlinkSync(pkg, link);
    for (const cwd of [link, join(link, 'lib'), `${pkg}/lib/..`]) {
      const r = await runToEnd(s, ws, ['--ro', pkg, '--cwd', cwd], [PROBE, 'whoami']);
      expect(r.code, cwd).toBe(LAUNCHER_EXIT.launcherError);
      expect(r.stderr, cwd).toContain(`--cwd ${cwd} is not canonical (a symlink or ./.. in it): give its real path`);
      expect(r.stdout, cwd).toBe('');
    }
  });

  it('a --cwd removed after the plan was made fails the launch (125, error line): the command never runs elsewhere', async () => {
    // The ASan build's test hook holds the launch before the binds; the directory goes meanwhile.
    const gone = dir('pkg', 'gone');
    const args = ['--socket', s.socket, '--port', String(PORT), '--workspace', ws, '--ro', BUILD, '--ro', pkg, '--cwd', gone, '--', '/bin/pwd'];
    const child = spawn(ASAN, args, { env: { ...process.env, GATEHOUSE_SANDBOX_TEST_HOLD_BEFORE_BINDS_MS: '1500' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.includes('holding before binds') && existsSync(gone)) rmdirSync(gone);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
    clearTimeout(timer);
    expect(existsSync(gone)).toBe(false);
    expect(code, stderr).toBe(LAUNCHER_EXIT.launcherError);
    expect(stderr).toMatch(/^gatehouse-sandbox: error in agent: chdir .*\(ENOENT\)$/m);
    expect(stderr).toContain(`chdir ${gone}: `);
    expect(stderr).not.toMatch(/AddressSanitizer|LeakSanitizer|runtime error/);
    expect(stdout).toBe('');
  });
});
