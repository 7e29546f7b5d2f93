/**
 * `gatehouse serve` with the memory probe preloaded (bench/procs/memory-probe.ts):
 * the same command as the memory section's gateway, plus --expose-gc and an
 * IPC channel the bench asks for heap statistics, snapshots and the loaded
 * scripts over.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { HeapSpaceInfo } from 'node:v8';
import type { LoadedScript, MemoryNow } from './procs/memory-measure.js';
import { DIST_BENCH, ROOT, stopChild } from './lib/procs.js';

export interface ProbeStats extends MemoryNow {
  threads: number;
  spaces: HeapSpaceInfo[];
}

export interface ProbedServe {
  /** The JSON line `serve --json` printed. */
  line: string;
  pid: number;
  stats(): Promise<ProbeStats>;
  snapshot(path: string): Promise<void>;
  scripts(): Promise<LoadedScript[]>;
  stop(): Promise<void>;
}

export function startProbedServe(state: string, env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<ProbedServe> {
  const args = ['--expose-gc', `--import=${join(DIST_BENCH, 'procs', 'memory-probe.js')}`, join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'serve', '--port', '0', '--json', '--state', state];
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const { stdout, stderr } = child;
  if (stdout === null || stderr === null) throw new Error('probed serve: no stdout/stderr pipe');
  let err = '';
  stderr.on('data', (c: Buffer) => (err = (err + c.toString('utf8')).slice(-4000)));
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error !== undefined) w?.reject(new Error(`memory probe: ${m.error}`));
    else w?.resolve(m.result);
  });
  const ask = <T>(req: Record<string, unknown>): Promise<T> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, ...req });
    });
  const stop = () => stopChild(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`probed serve: not ready after ${timeoutMs} ms\nstderr: ${err}`));
    }, timeoutMs);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`probed serve exited (${code}) before it was ready\nstderr: ${err}`));
    };
    child.once('exit', onExit);
    stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const m = /^(\{.*\})$/m.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      stdout.removeAllListeners('data');
      stdout.resume();
      resolve({
        line: m[1]!,
        pid: child.pid ?? 0,
        stats: () => ask<ProbeStats>({ op: 'stats' }),
        snapshot: async (path) => void (await ask<{ path: string }>({ op: 'snapshot', path })),
        scripts: async () => (await ask<{ scripts: LoadedScript[] }>({ op: 'scripts' })).scripts,
        stop,
      });
    });
  });
}
