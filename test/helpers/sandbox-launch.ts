/**
 * Starting the real launcher (native/build/gatehouse-sandbox) from a test:
 * a unix-socket echo server stands in for the gateway's session socket.
 * Build first: make -C native.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { launcherPath } from '../../src/sandbox/launcher.js';
import { tempDir } from './tmp.js';

export const LAUNCHER = launcherPath();
export const BUILD = dirname(LAUNCHER);
export const PROBE = join(BUILD, 'probe');
export const PORT = 8931;
export const IS_ROOT = process.getuid?.() === 0;

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Launched {
  child: ChildProcess;
  done: Promise<Finished>;
  /** Resolves with the first match of `re` in stdout so far. */
  line(re: RegExp, timeoutMs?: number): Promise<string>;
}

export interface Scratch {
  /** 0755 directory for the test's files; removed by close(). */
  root: string;
  socket: string;
  close(): Promise<void>;
}

/** A scratch directory and an echo server on a unix socket in it. */
export async function scratch(prefix: string): Promise<Scratch> {
  const root = tempDir(prefix);
  chmodSync(root, 0o755);
  const sockDir = join(root, 'sock');
  mkdirSync(sockDir, { mode: 0o700 });
  const socket = join(sockDir, 'echo.sock');
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, resolve);
  });
  return {
    root,
    socket,
    async close() {
      await new Promise((r) => server.close(() => r(undefined)));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Runs COMMAND under the launcher (the release build unless `launcher`) with `flags`; killed after timeoutMs (default 30 s). */
export function launch(s: Scratch, workspace: string, flags: string[], command: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; launcher?: string } = {}): Launched {
  const args = ['--socket', s.socket, '--port', String(PORT), '--workspace', workspace, '--ro', BUILD, ...flags, '--', ...command];
  const child = spawn(opts.launcher ?? LAUNCHER, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
  const done = new Promise<Finished>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  const line = async (re: RegExp, timeoutMs = 15_000): Promise<string> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(stdout);
      if (m) return m[0];
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > end) {
        throw new Error(`no ${re} in stdout (${JSON.stringify(stdout)}); stderr: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { child, done, line };
}

/** Runs to completion. */
export function runToEnd(s: Scratch, workspace: string, flags: string[], command: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Finished> {
  return launch(s, workspace, flags, command, opts).done;
}

/** The children of a process (from /proc; empty when it is gone). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** One field of /proc/PID/status, or undefined. */
export function statusField(pid: number, field: string): string | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
    return line?.slice(field.length + 1).trim();
  } catch {
    return undefined;
  }
}

/** The host pid of the command (init's child) under a running launcher. */
export function agentPid(launcherPid: number): number {
  const init = childrenOf(launcherPid).find((k) => statusField(k, 'NSpid')?.split(/\s+/).length === 2);
  const agent = init === undefined ? undefined : childrenOf(init)[0];
  if (agent === undefined) throw new Error(`no sandbox init/agent under ${launcherPid}`);
  return agent;
}

/** Real uid of a host pid. */
export function uidOf(pid: number): number {
  return Number(statusField(pid, 'Uid')?.split(/\s+/)[0]);
}

/**
 * The cgroup directories of a host pid, as seen from the host: for v1 one
 * per controller we limit ("pids", "memory", "cpu"), for v2 one ("").
 */
export function cgroupDirs(pid: number): Map<string, string> {
  const dirs = new Map<string, string>();
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const [, controllers = '', path = ''] = line.split(':');
    if (controllers === '' && path.includes('/gatehouse/')) dirs.set('', join('/sys/fs/cgroup', path));
    for (const c of controllers.split(',')) {
      if (c === 'pids' || c === 'memory' || c === 'cpu') dirs.set(c, join('/sys/fs/cgroup', c, path));
    }
  }
  return dirs;
}

/** `gatehouse run` (dist/, build first) with its own state, an empty registry and the shipped policies. */
export function gatehouseRun(s: Scratch, args: string[], command: string[], env: NodeJS.ProcessEnv = {}): Promise<Finished> {
  const root = resolve(dirname(LAUNCHER), '..', '..');
  const base = join(s.root, `cli-${process.hrtime.bigint()}`);
  mkdirSync(join(base, 'registry'), { recursive: true });
  const argv = [join(root, 'dist/src/cli/main.js'), 'run', '--agent', 'limits-test', '--no-mcp-config', '--ro', BUILD,
    '--registry', join(base, 'registry'), '--policies', join(root, 'policies'), ...args, '--', ...command];
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, argv, {
      env: { PATH: process.env.PATH, HOME: base, GATEHOUSE_STATE: join(base, 'state'), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    child.once('error', rej);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr });
    });
  });
}
