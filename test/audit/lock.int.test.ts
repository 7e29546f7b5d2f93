/**
 * The single-writer lock is the kernel's (flock on the audit directory): a
 * second writer is refused while the first lives, whatever the files say,
 * and a dead writer's lock is gone at once (no stale lock, no pid reuse).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writerAlive } from '../../src/audit/lock.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { CLI, isAlive, tempDir, writeConfig } from '../helpers/gateway.js';
import { openLog, tempState } from './helpers.js';

const HOLDER = join(import.meta.dirname, '..', 'fixtures', 'hold-log.ts');
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** A real process holding the log of `dir` (as a gateway would). */
function holdLog(dir: string, withChild = false): Promise<ChildProcess & { out: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', HOLDER, dir, ...(withChild ? ['with-child'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('exit', (c) => reject(new Error(`holder exited ${c}`)));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve(Object.assign(child, { out: () => out }));
    });
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
}

describe('audit writer lock (flock on the audit directory)', () => {
  it('two writers on one state directory: the second is refused, naming the holder', async () => {
    const { dir } = tempState();
    const holder = await holdLog(dir);
    const err = await openLog(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'AUDIT_UNAVAILABLE', details: { busy: true, pid: holder.pid } });
    expect(String((err as Error).message)).toMatch(new RegExp(`being written by another process \\(pid ${holder.pid}, since .*\\): another gateway uses this state directory`));
    expect(await writerAlive(dir)).toMatchObject({ alive: true, holder: { pid: holder.pid } });
  });

  it('a second `gatehouse serve` on the same state directory exits 3 and names the holder', { timeout: 30_000 }, async () => {
    const root = tempDir('gh-lock-serve-');
    const dirs = writeConfig(root, []);
    mkdirSync(join(dirs.state, 'audit'), { recursive: true, mode: 0o700 });
    const holder = await holdLog(join(dirs.state, 'audit'));
    const r = spawnSync(process.execPath, [CLI, 'serve', '--port', '0', '--registry', dirs.registry, '--policies', dirs.policies], {
      env: { PATH: process.env.PATH ?? '', HOME: root, GATEHOUSE_STATE: dirs.state, GATEHOUSE_LOG_LEVEL: 'error' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain(`being written by another process (pid ${holder.pid}`);
  });

  it('writer SIGKILLed: the next writer takes the log over at once and continues the chain', { timeout: 30_000 }, async () => {
    const { dir } = tempState();
    const holder = await holdLog(dir);
    holder.kill('SIGKILL');
    await killed(holder);
    // No waiting on a stale lock: the kernel dropped it with the dead process. Shown without a clock:
    // a non-blocking probe finds it free at once, and the writer (which gives up after waiting 0.5 s
    // for a lock held by anyone) opens the log.
    expect(await writerAlive(dir)).toMatchObject({ alive: false });
    const log = await openLog(dir);
    await log.append({ event: 'gateway.start', after: 'takeover' });
    await log.close();
    expect((await verifyAudit(dir)).problems).toEqual([]);
    expect(await writerAlive(dir)).toMatchObject({ alive: false });
  });

  it('a child the writer started outlives it (as a stdio upstream can): the lock died with the writer all the same', { timeout: 30_000 }, async () => {
    const { dir } = tempState();
    const holder = await holdLog(dir, true);
    const grandchild = Number(/child (\d+)/.exec(holder.out())?.[1]);
    try {
      holder.kill('SIGKILL');
      await killed(holder);
      expect(isAlive(grandchild)).toBe(true);
      expect((await writerAlive(dir))?.alive).toBe(false);
      const log = await openLog(dir);
      await log.close();
    } finally {
      if (isAlive(grandchild)) process.kill(grandchild, 'SIGKILL');
    }
  });

  it('the old attack: writer.lock edited to a dead pid, to garbage, or deleted while the holder lives: no takeover', { timeout: 30_000 }, async () => {
    const { dir } = tempState();
    const holder = await holdLog(dir);
    const lockFile = join(dir, 'writer.lock');
    expect(JSON.parse(readFileSync(lockFile, 'utf8'))).toMatchObject({ pid: holder.pid });
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const tampered = [`${dead.stdout}\n`, 'garbage\n', JSON.stringify({ pid: Number(dead.stdout), since: 'x', fromSeq: 0 }), ''];
    for (const content of tampered) {
      if (content === '') unlinkSync(lockFile);
      else writeFileSync(lockFile, content);
      await expect(openLog(dir)).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE', details: { busy: true } });
      expect(holder.exitCode).toBeNull();
      expect((await writerAlive(dir))?.alive).toBe(true);
    }
    // The holder still writes its chain alone.
    holder.kill('SIGKILL');
    await killed(holder);
    const log = await openLog(dir);
    await log.close();
    expect((await verifyAudit(dir)).problems).toEqual([]);
  });

  it('a reader probing the lock never blocks a writer that starts meanwhile', async () => {
    const { dir } = tempState();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const probes = Promise.all(Array.from({ length: 20 }, () => writerAlive(dir)));
    const log = await openLog(dir);
    await probes;
    expect((await writerAlive(dir))?.alive).toBe(true);
    await log.close();
  });
});
