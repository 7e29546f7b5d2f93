/**
 * Hostile review of 6756508 (the agent, not the launcher, waits for the
 * relay's "confined and serving" byte, right before exec). Attacks on that
 * wait, held open with the ASan build's slow-relay hook:
 *  - a byte from elsewhere: while the agent waits, no process on the machine
 *    but the relay holds the pipe's write end (not the launcher, init, the
 *    idmap helper, the agent), and no process but the agent its read end;
 *    the agent waits already confined (no_new_privs, seccomp, its uid), the
 *    relay is still unconfined (so the window is the one under test);
 *  - a leak into the command: after exec the command holds 0-2 only (and
 *    the fd its own listing opens);
 *  - a relay that dies: 125, the command never runs, the sandbox's cgroup is
 *    removed and no process of the launch is left;
 *  - SIGTERM to the launcher during the wait: it ends (the command gets the
 *    signal once started; as before the change) and leaves no process.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD, IS_ROOT, cgroupDirs, childrenOf, launch, scratch, statusField, type Launched, type Scratch } from '../helpers/sandbox-launch.js';

const ASAN = join(BUILD, 'gatehouse-sandbox-asan');
let s: Scratch;
let ws: string;

beforeAll(async () => {
  s = await scratch('gh-hostile-relay-ready-');
  ws = join(s.root, 'ws');
  mkdirSync(ws);
});

afterAll(async () => {
  await s.close();
});

function start(env: NodeJS.ProcessEnv, script: string, flags: string[] = []): Launched {
  return launch(s, ws, flags, ['/bin/sh', '-c', script], { env, launcher: ASAN });
}

interface Tree {
  launcher: number;
  relay: number;
  init: number;
  agent: number;
}

/** The launcher's relay, init and agent, once the agent exists. */
async function tree(launcher: number): Promise<Tree> {
  const end = Date.now() + 10_000;
  for (;;) {
    const kids = childrenOf(launcher);
    const init = kids.find((k) => statusField(k, 'NSpid')?.split(/\s+/).length === 2);
    const relay = kids.find((k) => k !== init);
    const agent = init === undefined ? undefined : childrenOf(init)[0];
    if (init !== undefined && relay !== undefined && agent !== undefined && statusField(agent, 'Seccomp') === '2') {
      return { launcher, relay, init, agent };
    }
    if (Date.now() > end) throw new Error(`no relay/init/agent under ${launcher}: ${kids.join(' ')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Holder {
  pid: number;
  fd: number;
  access: 'read' | 'write';
}

/** Every process on the machine holding an fd on pipe:[inode], with its access mode. */
function holdersOf(pipe: string): Holder[] {
  const out: Holder[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${name}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${name}/fd/${fd}`) !== pipe) continue;
        const flags = parseInt(/flags:\s*(\d+)/.exec(readFileSync(`/proc/${name}/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0', 8);
        out.push({ pid: Number(name), fd: Number(fd), access: (flags & 3) === 0 ? 'read' : 'write' });
      } catch {
        /* gone */
      }
    }
  }
  return out;
}

/** The agent's pipe fds open for reading (its status pipe is write-only): the relay's ready pipe. */
function readPipesOf(pid: number): string[] {
  const pipes: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    const flags = parseInt(/flags:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0', 8);
    if (link.startsWith('pipe:') && (flags & 3) === 0) pipes.push(link);
  }
  return pipes;
}

function alive(pids: number[]): number[] {
  return pids.filter((p) => existsSync(`/proc/${p}`) && statusField(p, 'State')?.startsWith('Z') !== true);
}

describe('hostile: the relay-ready byte the agent waits for', () => {
  it('while the agent waits, only the relay can write the byte and only the agent can read it', async () => {
    const run = start({ GATEHOUSE_SANDBOX_TEST_RELAY_READY_MS: '1500' },
      'echo command-started >&2; for f in /proc/$$/fd/*; do echo "fd ${f##*/}"; done');
    const t = await tree(run.child.pid!);
    // The window under test: the agent is set up and confined, the relay is not yet.
    expect(statusField(t.relay, 'Seccomp')).toBe('0');
    expect(statusField(t.agent, 'Seccomp')).toBe('2');
    expect(statusField(t.agent, 'NoNewPrivs')).toBe('1');
    expect(readlinkSync(`/proc/${t.agent}/exe`)).toBe(readlinkSync(`/proc/${t.launcher}/exe`)); // not exec'd yet
    const pipes = readPipesOf(t.agent);
    expect(pipes).toHaveLength(1);
    const holders = holdersOf(pipes[0]!);
    expect(holders.filter((h) => h.access === 'write').map((h) => h.pid)).toEqual([t.relay]);
    expect(holders.filter((h) => h.access === 'read').map((h) => h.pid)).toEqual([t.agent]);
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(r.stderr.indexOf('command-started')).toBeGreaterThan(r.stderr.indexOf('test hook: relay ready'));
    expect(r.stderr.indexOf('test hook: relay ready')).toBeGreaterThanOrEqual(0);
    // 0-2, and the fd the shell's glob opened on /proc/$$/fd: no ready or status pipe.
    expect(r.stdout.trim().split('\n')).toEqual(['fd 0', 'fd 1', 'fd 2', 'fd 3']);
    expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error/);
  });

  it('a relay that dies before it is confined: 125, no command, no cgroup, no process left', async () => {
    const marker = join(ws, 'ran-despite-dead-relay');
    const run = start({ GATEHOUSE_SANDBOX_TEST_RELAY_READY_MS: '800', GATEHOUSE_SANDBOX_TEST_RELAY_DIE: '1' }, `touch ${marker}`);
    const t = await tree(run.child.pid!);
    const dirs = IS_ROOT ? [...cgroupDirs(t.agent).values()] : [];
    const r = await run.done;
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('the relay failed to start');
    expect(existsSync(marker)).toBe(false);
    await new Promise((res) => setTimeout(res, 200));
    expect(alive([t.relay, t.init, t.agent])).toEqual([]);
    for (const d of dirs) expect(existsSync(d)).toBe(false);
    expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error/);
  });

  it('SIGTERM to the launcher while the agent waits: it ends, nothing is left', async () => {
    const run = start({ GATEHOUSE_SANDBOX_TEST_RELAY_READY_MS: '1000' }, 'exec sleep 20');
    const t = await tree(run.child.pid!);
    run.child.kill('SIGTERM');
    const began = Date.now();
    const r = await run.done;
    expect(Date.now() - began).toBeLessThan(10_000);
    expect(r.code).toBe(143); // forwarded to the command once it started
    await new Promise((res) => setTimeout(res, 200));
    expect(alive([t.relay, t.init, t.agent])).toEqual([]);
    expect(r.stderr).not.toMatch(/AddressSanitizer|runtime error/);
  });
});
