/**
 * Thin wrapper around the native launcher `native/build/gatehouse-sandbox`
 * (see native/README.md and native/SECURITY.md): where it is, what the
 * kernel supports (`--probe`), and the argument vector for one session.
 * This file only builds arguments; it never weakens what the launcher does.
 */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { packageRoot } from '../config/paths.js';
import { GatehouseError } from '../errors.js';

/** Exit codes of the launcher itself (the docker-run convention). Any other
 * code is the command's own, or 128+N when it died of signal N. */
export const LAUNCHER_EXIT = {
  /** Required confinement is unavailable (e.g. Landlock ABI < 6): refused to start. */
  unavailable: 124,
  /** Usage error, or a setup step failed. */
  launcherError: 125,
  /** The command was found but could not be executed. */
  cannotExecute: 126,
  /** The command was not found. */
  notFound: 127,
} as const;

/** Environment switch for tests: pretend the kernel's Landlock ABI is N (only ever lowers it). */
export const SIMULATE_LANDLOCK_ABI_ENV = 'GATEHOUSE_SANDBOX_SIMULATE_LANDLOCK_ABI';

/** Environment switch for tests: pretend no per-sandbox cgroup can be made (the uid/rlimit fallback). */
export const SIMULATE_NO_CGROUP_ENV = 'GATEHOUSE_SANDBOX_SIMULATE_NO_CGROUP';

/** How one sandbox's processes, memory and CPU are kept apart from the others'. */
export type LimitMechanism = 'cgroup-v2' | 'cgroup-v1' | 'session-uid' | 'rlimit-per-user';

/**
 * Per-sandbox limits. Given, a limit is required: the launcher refuses to
 * start (exit 124) where no cgroup can be made. Left out, the launcher's
 * defaults (pids 1024, memory 4G, cpu weight 100) apply where it can.
 */
export interface SandboxLimits {
  pidsMax?: number;
  /** Bytes, or a size with K, M, G or T (powers of 1024), e.g. "2G". */
  memoryMax?: number | string;
  /** Relative CPU share, 1-10000 (100 = default). */
  cpuWeight?: number;
}

const SIZE = /^[0-9]+[KMGT]?$/;

/** Output of `gatehouse-sandbox --probe`. */
export interface SandboxProbe {
  version: string;
  arch: string;
  kernel: string;
  euid: number;
  /** Which mechanism bounds each sandbox here, and why (absent from launchers older than the limits). */
  limits?: { mechanism: LimitMechanism; detail: string; sessionUid: boolean };
  landlock: { abi: number; kernelAbi: number; required: number; simulated: boolean };
  userns: boolean;
  netns: boolean;
  mountns: boolean;
  pidns: boolean;
  ipcns: boolean;
  utsns: boolean;
  cgroupns: boolean;
  seccomp: boolean;
  mountSetattr: boolean;
  closeRange: boolean;
  pidfd: boolean;
  /** Everything required for full confinement is present. */
  ok: boolean;
  /** Only Landlock is too old (ABI 1-5): `allowWeaker` would let it run. */
  weakerPossible: boolean;
  /** Human-readable list of what is missing. */
  missing: string[];
}

export interface LauncherPlan {
  /** The session's unix socket (outside the sandbox); the relay connects to it. */
  socketPath: string;
  /** Port of the relay on 127.0.0.1 (and ::1) inside the sandbox. */
  port: number;
  /** Read-write at the same absolute path; the command's cwd unless `cwd` is given. */
  workspace: string;
  /**
   * The command's cwd instead of the workspace (`--cwd`), e.g. a stdio
   * server's package directory given in `ro`. Absolute and canonical; the
   * launcher refuses (125) one that is not the workspace or inside it, an
   * `ro`/`rw` path or `home`. A relative command is relative to it.
   */
  cwd?: string;
  ro?: string[];
  rw?: string[];
  env?: Record<string, string>;
  /**
   * Variables the command gets from the launcher's own environment (`--env-keep NAME`): for secrets,
   * which must never be on a command line (/proc/PID/cmdline is readable by every local user).
   * The caller puts their values in the environment it spawns the launcher with.
   */
  envKeep?: string[];
  /** Run on Landlock ABI 1-5 without what it lacks (the launcher prints what). */
  allowWeaker?: boolean;
  /**
   * Protected paths (read-only inside the workspace and each `rw` dir: .git,
   * shell start-up files, editor/agent config; see native/README.md) to leave
   * writable; the launcher warns about each on stderr.
   */
  allowWrite?: string[];
  /** Extra existing paths inside a writable root to protect the same way (e.g. a .mcp.json the host wrote). */
  protect?: string[];
  /** The agent's own home (read-write, $HOME; its dotfiles not protected): `--home`. */
  home?: string;
  limits?: SandboxLimits;
  command: string[];
}

const LAUNCHER_NAME = 'gatehouse-sandbox';
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SUN_PATH_MAX = 107; // sizeof(sockaddr_un.sun_path) - 1 on Linux

/** Absolute path of the launcher binary (it may not be built yet: see `probeSandbox`). */
export function launcherPath(): string {
  return join(packageRoot(), 'native', 'build', LAUNCHER_NAME);
}

/** Runs `gatehouse-sandbox --probe`. Throws SANDBOX_UNAVAILABLE when the binary is missing or broken. */
export function probeSandbox(): Promise<SandboxProbe> {
  const path = launcherPath();
  if (!existsSync(path)) {
    return Promise.reject(
      new GatehouseError('SANDBOX_UNAVAILABLE', `sandbox launcher not built: ${path} (run: make -C native)`),
    );
  }
  return new Promise((resolve, reject) => {
    // Exit 124 (something missing) still prints the JSON object.
    execFile(path, ['--probe'], { timeout: 10_000, encoding: 'utf8' }, (error, stdout) => {
      try {
        resolve(parseProbe(stdout));
      } catch (cause) {
        reject(
          new GatehouseError('SANDBOX_UNAVAILABLE', 'sandbox launcher --probe gave no usable answer', {
            cause: error ?? cause,
          }),
        );
      }
    });
  });
}

function parseProbe(stdout: string): SandboxProbe {
  const value: unknown = JSON.parse(stdout);
  if (typeof value !== 'object' || value === null) throw new TypeError('probe output is not an object');
  const o = value as Record<string, unknown>;
  const landlock = o['landlock'] as Record<string, unknown> | undefined;
  if (typeof o['ok'] !== 'boolean' || typeof landlock?.['abi'] !== 'number' || !Array.isArray(o['missing'])) {
    throw new TypeError('probe output lacks ok/landlock.abi/missing');
  }
  return value as SandboxProbe;
}

/** The launcher's argument vector for one session (pass to spawn(launcherPath(), args)). */
export function buildLauncherArgs(plan: LauncherPlan): string[] {
  const bad = (message: string): never => {
    throw new GatehouseError('SANDBOX_FAILED', `invalid sandbox plan: ${message}`);
  };
  if (!isAbsolute(plan.socketPath)) bad('socketPath must be absolute');
  if (Buffer.byteLength(plan.socketPath) > SUN_PATH_MAX) bad(`socketPath longer than ${SUN_PATH_MAX} bytes`);
  if (!Number.isInteger(plan.port) || plan.port < 1 || plan.port > 65535) bad('port must be an integer in 1..65535');
  if (!isAbsolute(plan.workspace)) bad('workspace must be absolute');
  if (!existsSync(plan.workspace) || !statSync(plan.workspace).isDirectory()) bad('workspace must be an existing directory');
  if (plan.command.length === 0 || plan.command[0] === '') bad('command is empty');

  const args = ['--socket', plan.socketPath, '--port', String(plan.port), '--workspace', plan.workspace];
  if (plan.cwd !== undefined) {
    if (!isAbsolute(plan.cwd)) bad('cwd must be absolute');
    args.push('--cwd', plan.cwd);
  }
  for (const [flag, paths] of [['--ro', plan.ro ?? []], ['--rw', plan.rw ?? []]] as const) {
    for (const p of paths) {
      if (!isAbsolute(p)) bad(`${flag} ${p} must be absolute`);
      args.push(flag, p);
    }
  }
  if (plan.home !== undefined) {
    if (!isAbsolute(plan.home)) bad('home must be absolute');
    args.push('--home', plan.home);
  }
  for (const [name, value] of Object.entries(plan.env ?? {})) {
    if (!ENV_NAME.test(name)) bad(`env name ${JSON.stringify(name)} is not [A-Za-z_][A-Za-z0-9_]*`);
    if (value.includes('\0')) bad(`env ${name} contains a NUL byte`);
    args.push('--env', `${name}=${value}`);
  }
  for (const name of plan.envKeep ?? []) {
    if (!ENV_NAME.test(name)) bad(`env name ${JSON.stringify(name)} is not [A-Za-z_][A-Za-z0-9_]*`);
    args.push('--env-keep', name);
  }
  if (plan.allowWeaker === true) args.push('--allow-weaker');
  for (const [flag, paths] of [['--allow-write', plan.allowWrite ?? []], ['--protect', plan.protect ?? []]] as const) {
    for (const p of paths) {
      if (!isAbsolute(p)) bad(`${flag} ${p} must be absolute`);
      args.push(flag, p);
    }
  }
  args.push(...limitArgs(plan.limits ?? {}, bad));
  args.push('--', ...plan.command);
  return args;
}

function limitArgs(l: SandboxLimits, bad: (message: string) => never): string[] {
  const args: string[] = [];
  const int = (flag: string, v: number | undefined, min: number, max: number) => {
    if (v === undefined) return;
    if (!Number.isInteger(v) || v < min || v > max) bad(`${flag} must be an integer in ${min}..${max}`);
    args.push(flag, String(v));
  };
  int('--pids-max', l.pidsMax, 8, 1 << 22);
  if (l.memoryMax !== undefined) {
    const m = String(l.memoryMax);
    if (!SIZE.test(m)) bad(`--memory-max ${JSON.stringify(m)}: use bytes or a number with K, M, G or T`);
    args.push('--memory-max', m);
  }
  int('--cpu-weight', l.cpuWeight, 1, 10000);
  return args;
}

/**
 * Tells a launcher failure from the command's own exit: the launcher exits
 * 124-127 *and* writes a line starting "gatehouse-sandbox: error" or
 * "gatehouse-sandbox: usage error" to stderr. Returns undefined when the
 * code is the command's.
 */
export function launcherFailure(code: number, stderr: string): GatehouseError | undefined {
  if (code < LAUNCHER_EXIT.unavailable || code > LAUNCHER_EXIT.notFound) return undefined;
  const line = stderr.split('\n').find((l) => /^gatehouse-sandbox: (usage )?error/.test(l));
  if (line === undefined) return undefined;
  const kind = code === LAUNCHER_EXIT.unavailable ? 'SANDBOX_UNAVAILABLE' : 'SANDBOX_FAILED';
  return new GatehouseError(kind, line, { details: { exitCode: code } });
}
