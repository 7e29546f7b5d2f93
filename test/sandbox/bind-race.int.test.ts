/**
 * The launcher mounts what the plan resolved, never what a path points to by
 * the time it mounts (issue #12, item 1, the launcher's side). An agent in
 * one sandbox that can write the parent of another sandbox's --rw path can
 * swap a component for a symlink between the plan (canonical paths) and the
 * bind: a bind that followed it would mount the link's target read-write.
 * The sanitizer build holds before the binds on a test-only switch
 * (GH_TEST_HOOKS; the release binary has none), so the swap is deterministic.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD, PORT, scratch, type Finished, type Scratch } from '../helpers/sandbox-launch.js';

const ASAN = join(BUILD, 'gatehouse-sandbox-asan');
let s: Scratch;

beforeAll(async () => {
  s = await scratch('gh-bindrace-');
});
afterAll(async () => s.close());

/** Runs `touch DATA/pwned` with --rw DATA; calls `swap` once the launcher holds before its binds. */
function runHeld(workspace: string, data: string, swap?: () => void): Promise<Finished> {
  const args = ['--socket', s.socket, '--port', String(PORT), '--workspace', workspace, '--rw', data, '--', '/bin/sh', '-c', `echo ok > ${data}/written`];
  const child = spawn(ASAN, args, { env: { ...process.env, GATEHOUSE_SANDBOX_TEST_HOLD_BEFORE_BINDS_MS: '1500' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (swap && stderr.includes('holding before binds')) {
      const f = swap;
      swap = undefined;
      f();
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('bind sources are not followed through a symlink swapped in after the plan', () => {
  it('control: without a swap the --rw path is mounted and written', async () => {
    const ws = join(s.root, 'ws-control');
    const data = join(s.root, 'share-control', 'data');
    mkdirSync(ws);
    mkdirSync(data, { recursive: true });
    const r = await runHeld(ws, data);
    expect(r.code).toBe(0);
    expect(readFileSync(join(data, 'written'), 'utf8')).toBe('ok\n');
  });

  it("agent swaps a parent of another sandbox's --rw path for a symlink to a host directory: the launch is refused", async () => {
    const ws = join(s.root, 'ws-swap');
    const share = join(s.root, 'share');
    const data = join(share, 'data');
    const victim = join(s.root, 'victim');
    mkdirSync(ws);
    mkdirSync(data, { recursive: true });
    mkdirSync(join(victim, 'data'), { recursive: true });
    const r = await runHeld(ws, data, () => {
      renameSync(share, join(s.root, 'share.real'));
      symlinkSync(victim, share);
    });
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/goes through a symlink now/);
    expect(existsSync(join(victim, 'data', 'written'))).toBe(false);
  });
});
