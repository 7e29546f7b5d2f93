/** Child processes of the bench: started, waited for, measured and stopped by pid. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (bench/ compiles to dist/bench/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DIST_BENCH = join(ROOT, 'dist', 'bench');

export interface Proc {
  child: ChildProcess;
  /** The first stdout line matching the pattern. */
  match: RegExpExecArray;
  stop(): Promise<void>;
}

const started = new Set<ChildProcess>();

/** Spawns and waits until stdout matches `ready` (or the process exits / times out); no pattern: returns at once. */
export function startProc(cmd: string, args: string[], ready: RegExp | undefined, opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<Proc> {
  const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  let out = '';
  let err = '';
  child.stderr?.on('data', (c: Buffer) => {
    err = (err + c.toString('utf8')).slice(-4000);
  });
  const stop = () => {
    started.delete(child);
    return stopChild(child);
  };
  if (ready === undefined) {
    child.stdout?.resume();
    child.once('exit', (code) => {
      if (started.has(child)) process.stderr.write(`${cmd} exited (${code})\nstderr: ${err}\n`);
    });
    return Promise.resolve({ child, match: /$/.exec('') as RegExpExecArray, stop });
  }
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${cmd} ${args.join(' ').slice(0, 200)}: not ready after ${opts.timeoutMs ?? 30_000} ms\nstdout: ${out}\nstderr: ${err}`));
    }, opts.timeoutMs ?? 30_000);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code}) before it was ready\nstdout: ${out}\nstderr: ${err}`));
    };
    child.once('exit', onExit);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const m = ready.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      child.stdout?.removeAllListeners('data');
      child.stdout?.resume();
      resolvePromise({ child, match: m, stop });
    });
  });
}

/** Kills every child still running (on error paths), each by its own pid. */
export function killStarted(): void {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  started.clear();
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const TICKS_PER_S = 100; // USER_HZ on Linux

/** User + system CPU time of a process and its descendants (by /proc), in milliseconds. */
export function cpuMs(pid: number): number {
  let total = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_S; // utime, stime
    } catch {
      // gone
    }
  }
  return total;
}

function descendants(pid: number): number[] {
  const out: number[] = [];
  let children: string;
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
  } catch {
    return out;
  }
  for (const c of children.split(' ').filter((x) => x !== '')) out.push(Number(c), ...descendants(Number(c)));
  return out;
}

/** VmRSS of a process, in MiB. */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** Polls until `check` resolves true. */
export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM, then SIGKILL after 3 s; resolves once the child has exited. */
export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise<void>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) return r();
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(t);
      r();
    });
    child.kill('SIGTERM');
  });
}
