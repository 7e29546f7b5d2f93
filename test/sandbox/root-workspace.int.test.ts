/**
 * Running as root still gives the agent a writable workspace, and nothing
 * else (issue #12, item 8): the agent runs under a uid of its own, and
 * each writable root (workspace, --rw) is mounted idmapped so that on that
 * mount, and only there, the agent is the path's owner. Real launcher,
 * real kernel; these run as root.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, PROBE, gatehouseRun, runToEnd, scratch, type Scratch } from '../helpers/sandbox-launch.js';

let s: Scratch;
let n = 0;

beforeAll(async () => {
  s = await scratch('gh-rootws-');
});

afterAll(async () => {
  await s.close();
});

/** A fresh directory, 0755, owned by uid:gid. */
function dir(uid: number, gid = uid): string {
  const d = join(s.root, `d${n++}`);
  mkdirSync(d, { mode: 0o755 });
  chownSync(d, uid, gid);
  return d;
}

function owner(path: string): string {
  const st = statSync(path);
  return `${st.uid}:${st.gid}`;
}

async function sh(ws: string, script: string, flags: string[] = []) {
  return runToEnd(s, ws, flags, ['/bin/sh', '-c', script]);
}

describe('as root, the agent writes its workspace as the workspace\'s owner', () => {
  it('guard: runs as root (sudo gatehouse run is what is tested)', () => {
    expect(IS_ROOT, 'run the tests as root').toBe(true);
  });

  it('root-owned 0755 workspace (sudo gatehouse run --workspace ./repo): the agent creates and edits files, they land owned by root', async () => {
    const ws = dir(0);
    writeFileSync(join(ws, 'existing.txt'), 'one\n', { mode: 0o644 });
    const r = await sh(ws, 'echo new > new.txt && echo two >> existing.txt && mkdir sub && echo x > sub/y && mv new.txt renamed.txt && id -u');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(Number(r.stdout.trim())).toBeGreaterThanOrEqual(2 ** 31); // not root, not 65534: a uid of its own
    expect(readFileSync(join(ws, 'existing.txt'), 'utf8')).toBe('one\ntwo\n');
    for (const f of ['renamed.txt', 'sub', 'sub/y', 'existing.txt']) expect(owner(join(ws, f)), f).toBe('0:0');
  });

  it('sudo gatehouse run --workspace ./repo (the CLI, root-owned repo): the agent edits it and the files stay root\'s', async () => {
    const ws = dir(0);
    const r = await gatehouseRun(s, ['--workspace', ws], ['/bin/sh', '-c', 'echo edited > README && mkdir src && touch src/a.ts']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(ws, 'README'), 'utf8')).toBe('edited\n');
    for (const f of ['README', 'src', 'src/a.ts']) expect(owner(join(ws, f)), f).toBe('0:0');
  });

  it('workspace owned by uid 1000: files the agent creates land as 1000, not as root', async () => {
    const ws = dir(1000);
    const r = await sh(ws, 'echo hi > a.txt && mkdir b && touch b/c');
    expect(r.code).toBe(0);
    for (const f of ['a.txt', 'b', 'b/c']) expect(owner(join(ws, f)), f).toBe('1000:1000');
  });

  it('each --rw path maps to its own owner: root workspace, --rw owned by 1001', async () => {
    const ws = dir(0);
    const rw = dir(1001, 1002);
    const r = await sh(ws, `touch in-ws && touch ${rw}/in-rw`, ['--rw', rw]);
    expect(r.code).toBe(0);
    expect(owner(join(ws, 'in-ws'))).toBe('0:0');
    expect(owner(join(rw, 'in-rw'))).toBe('1001:1002');
  });

  it('the agent owns nothing else: /etc, a --ro path owned by the same owner, and a path outside stay unwritable', async () => {
    const ws = dir(0);
    const ro = dir(0);
    writeFileSync(join(ro, 'keep.txt'), 'keep\n');
    const outside = dir(0);
    const flags = ['--ro', ro];
    expect((await runToEnd(s, ws, flags, [PROBE, 'write', '/etc/gh-planted'])).stdout.trim()).toMatch(/^open:(EROFS|EACCES)$/);
    expect((await runToEnd(s, ws, flags, [PROBE, 'write', join(ro, 'keep.txt')])).stdout.trim()).toMatch(/^open:(EROFS|EACCES)$/);
    expect((await runToEnd(s, ws, flags, [PROBE, 'write', join(outside, 'x')])).stdout.trim()).toBe('open:ENOENT');
    expect(readFileSync(join(ro, 'keep.txt'), 'utf8')).toBe('keep\n');
  });

  it('a file in the workspace owned by someone other than the owner stays theirs: no write, no chown', async () => {
    const ws = dir(0);
    const theirs = join(ws, 'theirs.txt');
    writeFileSync(theirs, 'theirs\n', { mode: 0o644 });
    chownSync(theirs, 1234, 1234);
    expect((await runToEnd(s, ws, [], [PROBE, 'write', theirs])).stdout.trim()).toBe('open:EACCES');
    expect((await runToEnd(s, ws, [], [PROBE, 'chown', theirs, '0'])).stdout.trim()).toMatch(/^chown:(EPERM|EOVERFLOW)$/);
    expect(readFileSync(theirs, 'utf8')).toBe('theirs\n');
    expect(owner(theirs)).toBe('1234:1234');
  });

  it('agent chowns its own file to root or to another user: refused', async () => {
    const ws = dir(1000);
    writeFileSync(join(ws, 'mine.txt'), 'x');
    chownSync(join(ws, 'mine.txt'), 1000, 1000);
    for (const uid of ['0', '1001', '65534']) {
      expect((await runToEnd(s, ws, [], [PROBE, 'chown', join(ws, 'mine.txt'), uid])).stdout.trim(), uid).toMatch(/^chown:(EPERM|EOVERFLOW)$/);
    }
    expect(owner(join(ws, 'mine.txt'))).toBe('1000:1000');
  });

  it('agent plants a setuid-root file in a root-owned workspace: no set-id bit reaches the disk, and the mount is nosuid and idmapped', async () => {
    const ws = dir(0);
    const planted = join(ws, 'rootshell');
    const r = await runToEnd(s, ws, [], [PROBE, 'setid', planted]);
    expect(r.stdout.trim()).toBe('create:EPERM chmod:EPERM fchmod:EPERM fchmodat:EPERM openat2:ENOSYS');
    const st = statSync(planted);
    expect(st.uid).toBe(0);
    expect(st.mode & 0o6000).toBe(0);
    // Belt and braces: a set-id file there would not be honoured inside either.
    const mi = await runToEnd(s, ws, [], ['/bin/cat', '/proc/self/mountinfo']);
    const line = mi.stdout.split('\n').find((l) => l.split(' ')[4] === ws);
    expect(line, mi.stdout).toBeDefined();
    expect(line?.split(' ')[5]).toMatch(/(^|,)nosuid(,|$)/);
    expect(line?.split(' ')[5]).toMatch(/(^|,)idmapped(,|$)/);
  });

  it('a workspace on a filesystem that cannot be idmapped (ramfs): refused with 124 and a message saying what to do', async () => {
    const ws = dir(0);
    execFileSync('mount', ['-t', 'ramfs', 'gh-ramfs', ws]);
    try {
      const r = await runToEnd(s, ws, [], ['/bin/true']);
      expect(r.code).toBe(124);
      expect(r.stderr).toMatch(/^gatehouse-sandbox: error in init: .*cannot make an idmapped mount.*chown it to the user who runs the agent/m);
    } finally {
      execFileSync('umount', [ws]);
    }
  });
});
