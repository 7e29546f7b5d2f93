/**
 * One agent must not starve the others (issue #12, item 7): each sandbox
 * has its own process, memory and CPU limits — a cgroup of its own where
 * one can be made, else (as root) a uid of its own so that RLIMIT_NPROC is
 * not shared. Real launcher, real kernel; these run as root.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIMULATE_NO_CGROUP_ENV, buildLauncherArgs, type SandboxProbe } from '../../src/sandbox/launcher.js';
import { limitsLine } from '../../src/cli/doctor.js';
import { IS_ROOT, LAUNCHER, PORT, PROBE, agentPid, cgroupDirs, gatehouseRun, launch, runToEnd, scratch, uidOf, type Scratch } from '../helpers/sandbox-launch.js';

const SESSION_UID_BASE = 2 ** 31;
const NO_CGROUP = { [SIMULATE_NO_CGROUP_ENV]: '1' };
const FORK_FIVE = ['/bin/sh', '-c', 'for i in 1 2 3 4 5; do /bin/true & done; wait; echo forked'];

let s: Scratch;
let ws: string;

beforeAll(async () => {
  s = await scratch('gh-limits-');
  ws = join(s.root, 'ws');
  mkdirSync(ws);
});

afterAll(async () => {
  await s.close();
});

function read(dir: string, file: string): string {
  return readFileSync(join(dir, file), 'utf8').trim();
}

function probeJson(env: NodeJS.ProcessEnv = {}): SandboxProbe {
  let out: string;
  try {
    out = execFileSync(LAUNCHER, ['--probe'], { env: { ...process.env, ...env }, encoding: 'utf8' });
  } catch (e) {
    out = (e as { stdout: string }).stdout;
  }
  return JSON.parse(out) as SandboxProbe;
}

describe('per-sandbox limits', () => {
  it('guard: runs as root, and this machine has a cgroup the launcher can use', () => {
    expect(IS_ROOT, 'the limits are the root launcher\'s; run the tests as root').toBe(true);
    expect(probeJson().limits?.mechanism).toMatch(/^cgroup-v[12]$/);
  });

  it('agent fork-floods its sandbox: another sandbox started meanwhile can still fork', async () => {
    const a = launch(s, ws, ['--pids-max', '40'], [PROBE, 'forkflood', '30']);
    try {
      const flood = await a.line(/FLOOD \d+ \w+/);
      const [, n, err] = flood.split(' ');
      expect(err).toBe('EAGAIN');
      expect(Number(n)).toBeLessThan(40);
      expect(Number(n)).toBeGreaterThan(20);
      const b = await runToEnd(s, ws, [], FORK_FIVE);
      expect(b.stderr).toBe('');
      expect(b.code).toBe(0);
      expect(b.stdout.trim()).toBe('forked');
    } finally {
      a.child.kill('SIGTERM');
    }
    const r = await a.done;
    expect(r.code).toBe(128 + 15); // the command died of the forwarded SIGTERM; its children with the pid namespace
  });

  it('agent fork-floods with no cgroup (simulated): its own uid\'s RLIMIT_NPROC stops it, another sandbox still forks', async () => {
    const a = launch(s, ws, ['--max-procs', '40'], [PROBE, 'forkflood', '30'], { env: NO_CGROUP });
    try {
      const flood = await a.line(/FLOOD \d+ \w+/);
      expect(flood).toMatch(/^FLOOD (3\d|[12]\d) EAGAIN$/);
      // Same small RLIMIT_NPROC: were the uid shared, A's 40 processes would leave B none.
      const b = await runToEnd(s, ws, ['--max-procs', '40'], FORK_FIVE, { env: NO_CGROUP });
      expect(b.stderr).toBe('');
      expect(b.code).toBe(0);
    } finally {
      a.child.kill('SIGTERM');
    }
    await a.done;
  });

  it('the sandbox\'s cgroup holds its configured limits while it runs and is gone after it exits', async () => {
    const a = launch(s, ws, ['--pids-max', '100', '--memory-max', '256M', '--cpu-weight', '50'], [PROBE, 'sleep', '30']);
    let dirs: Map<string, string>;
    try {
      await a.line(/READY/);
      dirs = cgroupDirs(agentPid(a.child.pid ?? -1));
      expect(dirs.size, 'the command is in a gatehouse cgroup').toBeGreaterThan(0);
      for (const dir of dirs.values()) expect(dir).toMatch(new RegExp(`/gatehouse/${a.child.pid}-\\d+$`));
      const v2 = dirs.get('');
      if (v2 !== undefined) {
        expect(read(v2, 'pids.max')).toBe('100');
        expect(read(v2, 'memory.max')).toBe(String(256 * 2 ** 20));
        expect(read(v2, 'cpu.weight')).toBe('50');
      } else {
        expect(read(dirs.get('pids') ?? '', 'pids.max')).toBe('100');
        expect(read(dirs.get('memory') ?? '', 'memory.limit_in_bytes')).toBe(String(256 * 2 ** 20));
        expect(read(dirs.get('cpu') ?? '', 'cpu.shares')).toBe('512');
        // init and the command are both in it
        expect(read(dirs.get('pids') ?? '', 'cgroup.procs').split('\n')).toHaveLength(2);
      }
    } finally {
      a.child.kill('SIGTERM');
    }
    await a.done;
    for (const dir of dirs.values()) expect(existsSync(dir), dir).toBe(false);
  });

  it('a cgroup left by a SIGKILLed launcher is removed by the next launch', async () => {
    const a = launch(s, ws, [], [PROBE, 'sleep', '30']);
    await a.line(/READY/);
    const dirs = cgroupDirs(agentPid(a.child.pid ?? -1));
    a.child.kill('SIGKILL');
    await a.done;
    // The command dies with its launcher (PR_SET_PDEATHSIG, pid namespace); nobody removed the leaf.
    for (const dir of dirs.values()) expect(existsSync(dir), dir).toBe(true);
    const empty = () => [...dirs.values()].every((d) => read(d, 'cgroup.procs') === '');
    // A hang guard only (about 20 s): the kernel empties the cgroup as the killed processes are reaped.
    for (let i = 0; i < 1000 && !empty(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(empty(), 'the killed sandbox\'s processes are gone').toBe(true);
    const b = await runToEnd(s, ws, [], ['/bin/true']);
    expect(b.code).toBe(0);
    for (const dir of dirs.values()) expect(existsSync(dir), dir).toBe(false);
  });

  it('agent allocates past its memory limit: it is OOM-killed, and the host and the session socket are fine', async () => {
    const r = await runToEnd(s, ws, ['--memory-max', '64M'], [PROBE, 'alloc', '1024']);
    expect(r.stdout).not.toContain('OK alloc');
    expect(r.code).toBe(128 + 9);
    // The gateway side (here: the session socket's server) still answers a new sandbox.
    const echo = await runToEnd(s, ws, [], [PROBE, 'echo', '127.0.0.1', String(PORT), '2', '1000']);
    expect(echo.stdout.trim()).toBe('OK 2 x 1000');
  });

  it('two concurrent sandboxes as root with no cgroup (simulated) run under different uids of their own, never 65534', async () => {
    const a = launch(s, ws, [], [PROBE, 'sleep', '30'], { env: NO_CGROUP });
    const b = launch(s, ws, [], [PROBE, 'sleep', '30'], { env: NO_CGROUP });
    try {
      await a.line(/READY/);
      await b.line(/READY/);
      const ua = uidOf(agentPid(a.child.pid ?? -1));
      const ub = uidOf(agentPid(b.child.pid ?? -1));
      expect(ua).not.toBe(ub);
      for (const u of [ua, ub]) {
        expect(u).toBeGreaterThanOrEqual(SESSION_UID_BASE);
        expect(u).toBeLessThan(SESSION_UID_BASE + 65536);
      }
    } finally {
      a.child.kill('SIGTERM');
      b.child.kill('SIGTERM');
    }
    await Promise.all([a.done, b.done]);
  });

  it('a limit given explicitly where no cgroup can be made (simulated): refused with 124, saying how to fix it', async () => {
    const r = await runToEnd(s, ws, ['--pids-max', '100'], ['/bin/true'], { env: NO_CGROUP });
    expect(r.code).toBe(124);
    expect(r.stderr).toMatch(/^gatehouse-sandbox: error: .*need a per-sandbox cgroup.*gatehouse doctor/m);
  });

  it('bad limit values are usage errors (125) that start nothing', async () => {
    for (const flags of [['--pids-max', '0'], ['--memory-max', '1M'], ['--memory-max', '12X'], ['--cpu-weight', '10001']]) {
      const r = await runToEnd(s, ws, flags, ['/bin/true']);
      expect(r.code, flags.join(' ')).toBe(125);
      expect(r.stderr).toMatch(/usage error/);
    }
  });

  it('gatehouse run --pids-max reaches the launcher: the flood stops at the given limit', async () => {
    const r = await gatehouseRun(s, ['--workspace', ws, '--pids-max', '30'], [PROBE, 'forkflood', '0']);
    expect(r.stdout.trim(), r.stderr).toMatch(/^FLOOD ([12]\d) EAGAIN$/);
    expect(r.code).toBe(0);
    const bad = await gatehouseRun(s, ['--workspace', ws, '--memory-max', 'lots'], ['/bin/true']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--memory-max "lots": use a size of at least 16M/);
  });

  it('buildLauncherArgs passes the limits through and refuses malformed ones before anything starts', () => {
    const plan = { socketPath: s.socket, port: PORT, workspace: ws, command: ['/bin/true'] };
    const args = buildLauncherArgs({ ...plan, limits: { pidsMax: 64, memoryMax: '512M', cpuWeight: 20 } });
    expect(args.slice(args.indexOf('--pids-max'), args.indexOf('--'))).toEqual(['--pids-max', '64', '--memory-max', '512M', '--cpu-weight', '20']);
    expect(() => buildLauncherArgs({ ...plan, limits: { pidsMax: 1.5 } })).toThrow(/--pids-max/);
    expect(() => buildLauncherArgs({ ...plan, limits: { memoryMax: '1G; rm -rf /' } })).toThrow(/--memory-max/);
    expect(() => buildLauncherArgs({ ...plan, limits: { cpuWeight: 0 } })).toThrow(/--cpu-weight/);
  });

  it('gatehouse doctor says which mechanism applies here, and the fallback when there is no cgroup', () => {
    const here = probeJson();
    expect(limitsLine(here)).toMatch(/^Per-sandbox limits: cgroup-v[12]: /);
    const none = probeJson(NO_CGROUP);
    expect(none.limits?.mechanism).toBe('session-uid');
    expect(limitsLine(none)).toMatch(/uid of its own.*To get per-sandbox limits/);
  });
});
