/**
 * Each protection layer of the sandbox on its own (issue #23): a test that
 * passes only while *this* layer holds, because the other is switched off
 * or because it asserts the errno only this layer gives.
 *
 *  - read-only mount: EROFS. The kernel checks the mount before any LSM, so
 *    EROFS (not Landlock's EACCES) is what a write to a --ro path meets.
 *  - Landlock: EACCES, seen with the read-only mount switched off. That
 *    switch (GATEHOUSE_SANDBOX_TEST_NO_RO_MOUNT) and the relay's self-test
 *    (GATEHOUSE_SANDBOX_TEST_RELAY_OPEN) exist only in the ASan build
 *    (GH_TEST_HOOKS); the release binary has neither (checked below).
 *  - the relay: confined like the agent (no capabilities, no_new_privs,
 *    seccomp, and a Landlock domain of its own).
 *
 * The --ro directory lives in /var/tmp: under /tmp or a writable root,
 * Landlock's read-write rule for the parent covers a --ro bind too (its
 * rights add up down the tree), and the read-only mount is the only guard.
 */
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD, IS_ROOT, LAUNCHER, PORT, PROBE, childrenOf, scratch, type Finished, type Scratch } from '../helpers/sandbox-launch.js';

const ASAN = join(BUILD, 'gatehouse-sandbox-asan');
const NO_RO_MOUNT = 'GATEHOUSE_SANDBOX_TEST_NO_RO_MOUNT';
const RELAY_OPEN = 'GATEHOUSE_SANDBOX_TEST_RELAY_OPEN';

let s: Scratch;
let ws: string;
let ro: string; // --ro, outside every writable root; 0777 with a 0666 file: only the sandbox can refuse a write
const roFile = (): string => join(ro, 'notes.txt');

beforeAll(async () => {
  s = await scratch('gh-layers-');
  ws = join(s.root, 'ws');
  mkdirSync(ws);
  if (IS_ROOT) chownSync(ws, 65534, 65534); // as root the agent writes as its workspace's owner: a user, not root
  ro = mkdtempSync('/var/tmp/gh-layers-ro-');
  chmodSync(ro, 0o777);
  writeFileSync(roFile(), 'original\n');
  chmodSync(roFile(), 0o666);
});

afterAll(async () => {
  rmSync(ro, { recursive: true, force: true });
  await s.close();
});

function launch(launcher: string, command: string[], env: NodeJS.ProcessEnv = {}): { pid: number; done: Promise<Finished> } {
  const args = ['--socket', s.socket, '--port', String(PORT), '--workspace', ws, '--ro', BUILD, '--ro', ro, '--', ...command];
  const child = spawn(launcher, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const done = new Promise<Finished>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { pid: child.pid ?? 0, done };
}

/** The probe's verdicts for several attacks, one launch each. */
async function verdicts(launcher: string, attacks: string[][], env: NodeJS.ProcessEnv = {}): Promise<string[]> {
  const out: string[] = [];
  for (const a of attacks) {
    const r = await launch(launcher, [PROBE, ...a], env).done;
    expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error|: error/);
    out.push(r.stdout.trim());
  }
  return out;
}

const writes = (): string[][] => [
  ['write', roFile()], // open an existing file for writing
  ['write', join(ro, 'planted.sh')], // create a file
  ['rename', roFile(), join(ro, 'moved.txt')],
];

describe('read-only mount, on its own (EROFS: Landlock would say EACCES)', () => {
  it('agent writes, creates and renames in a --ro directory it has every permission bit on: the mount refuses with EROFS', async () => {
    expect(await verdicts(LAUNCHER, writes())).toEqual(['open:EROFS', 'open:EROFS', 'rename:EROFS']);
    expect(readFileSync(roFile(), 'utf8')).toBe('original\n');
  });

  it('agent writes into the system directories and the new root: EROFS from the mount', async () => {
    expect(await verdicts(LAUNCHER, [['write', '/etc/gh-layers'], ['write', '/usr/lib/gh-layers'], ['write', '/gh-layers']]))
      .toEqual(['open:EROFS', 'open:EROFS', 'open:EROFS']);
  });
});

describe('Landlock, on its own (the read-only mount switched off in the test build)', () => {
  it('agent writes, creates and renames in a --ro directory mounted writable: Landlock refuses with EACCES, the file is unchanged', async () => {
    expect(await verdicts(ASAN, writes(), { [NO_RO_MOUNT]: '1' })).toEqual(['open:EACCES', 'open:EACCES', 'rename:EACCES']);
    expect(readFileSync(roFile(), 'utf8')).toBe('original\n');
  });

  it('the switch is real: reading still works, and without Landlock in the way the mount would be the one to answer', async () => {
    expect(await verdicts(ASAN, [['read', roFile()]], { [NO_RO_MOUNT]: '1' })).toEqual(['OK']);
    expect(await verdicts(ASAN, [['write', roFile()]])).toEqual(['open:EROFS']);
  });

  it('the release binary has no test switch: the mount stays read-only (EROFS) with it set', async () => {
    expect(await verdicts(LAUNCHER, [['write', roFile()]], { [NO_RO_MOUNT]: '1' })).toEqual(['open:EROFS']);
    expect(readFileSync(LAUNCHER, 'latin1')).not.toContain('GATEHOUSE_SANDBOX_TEST_');
  });
});

function statusOf(pid: number): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

/** The launcher's child outside the pid namespace (one NSpid): the relay. */
async function relayOf(launcherPid: number): Promise<number> {
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    const relay = childrenOf(launcherPid).find((k) => {
      try {
        return statusOf(k).get('NSpid')?.split(/\s+/).length === 1;
      } catch {
        return false;
      }
    });
    // Its Seccomp field turns 2 as its last confinement step, just before the command starts.
    if (relay !== undefined && statusOf(relay).get('Seccomp') === '2') return relay;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no relay under ${launcherPid}`);
}

describe('the relay, confined like the agent', () => {
  it('a compromised relay opens a file in its own (socket) directory: Landlock refuses (EACCES); a TCP socket: seccomp refuses (EPERM)', async () => {
    // The relay is chrooted into the socket's directory and owns it: only its Landlock domain stands in the way.
    const sockDir = dirname(s.socket);
    writeFileSync(join(sockDir, 'relay-secret'), 'secret\n', { mode: 0o600 });
    const r = await launch(ASAN, [PROBE, 'exit', '0'], { [RELAY_OPEN]: '/relay-secret' }).done;
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('test hook: relay open /relay-secret: EACCES; tcp socket: EPERM');
  });

  it('relay process status: NoNewPrivs 1, every capability set empty, seccomp filter on', async () => {
    const l = launch(LAUNCHER, [PROBE, 'sleep', '30']);
    try {
      const st = statusOf(await relayOf(l.pid));
      expect(st.get('NoNewPrivs')).toBe('1');
      for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(st.get(set), set).toBe('0000000000000000');
      expect(st.get('Seccomp')).toBe('2');
      expect(Number(st.get('Seccomp_filters'))).toBeGreaterThanOrEqual(1);
    } finally {
      process.kill(l.pid, 'SIGTERM');
      await l.done;
    }
  });
});
