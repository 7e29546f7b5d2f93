/**
 * The real `gatehouse` CLI (dist/) as a child process: one way to run a
 * command to its end, and one way to start `gatehouse serve` and wait for
 * its URL. Build first (npm run build).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from './gateway.js';

export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunCliOptions {
  cwd?: string;
  /** The child's whole environment (PATH is added when missing). */
  env?: NodeJS.ProcessEnv;
  /** Killed with SIGKILL after this (default 40 s). */
  timeoutMs?: number;
  onSpawn?: (child: ChildProcess) => void;
  /** Called with all of stdout so far, on each chunk. */
  onStdout?: (stdout: string, child: ChildProcess) => void;
}

export function runCli(args: string[], opts: RunCliOptions = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      env: { PATH: process.env.PATH ?? '', ...(opts.env ?? {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      opts.onStdout?.(stdout, child);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 40_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    opts.onSpawn?.(child);
  });
}

export interface Serving {
  child: ChildProcess;
  url: string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** Starts `gatehouse serve --port 0 ARGS...` and resolves once it prints its URL (rejects if it exits first). */
export function startServe(args: string[], env: NodeJS.ProcessEnv): Promise<Serving> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /serving MCP at (http:\/\/\S+)/.exec(out);
      if (m?.[1]) resolve({ child, url: m[1], stop });
    });
    child.once('exit', (c) => reject(new Error(`serve exited ${c}: ${out} ${err}`)));
  });
}
