/**
 * Where gatehouse-sandbox's start-up goes: the launcher under `strace -f -ttt -T`,
 * its syscalls cut into the phases of native/src/main.c (supervise → init_main →
 * agent_main), medians over runs. Parsing and attribution are pure; the caller runs.
 */
import { readFileSync } from 'node:fs';
import { fmt, median } from './lib/stats.js';

export interface Syscall {
  pid: number;
  /** Entry time, seconds (strace -ttt). */
  t: number;
  name: string;
  args: string;
  ret: string;
  /** Time spent in the call, seconds (strace -T); NaN when strace gave none (exit_group, killed). */
  dur: number;
}

export interface Trace {
  calls: Syscall[];
  /** pid → time of its "+++ exited/killed +++" line. */
  ends: Map<number, number>;
}

const LINE = /^(\d+)\s+(\d+\.\d+)\s+(.*)$/;
const RESUMED = /^<\.\.\. (\w+) resumed>(.*)$/;
const CALL = /^(\w+)\((.*)$/;
const TAIL = /^(.*)\)\s+= (.*?)(?: <(\d+\.\d+)>)?$/;

/** Parses `strace -f -ttt -T -o FILE` output; joins "<unfinished ...>" with its "<... resumed>". */
export function parseStrace(text: string): Trace {
  const calls: Syscall[] = [];
  const ends = new Map<number, number>();
  const pending = new Map<number, Syscall>();
  const finish = (c: Syscall, rest: string): void => {
    const m = TAIL.exec(rest);
    c.args += m ? m[1]! : rest;
    c.ret = m ? m[2]! : '?';
    c.dur = m?.[3] === undefined ? Number.NaN : Number(m[3]);
  };
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const t = Number(m[2]);
    const rest = m[3]!;
    if (rest.startsWith('+++')) {
      ends.set(pid, t);
      continue;
    }
    if (rest.startsWith('---')) continue; // a signal delivered
    const resumed = RESUMED.exec(rest);
    if (resumed) {
      const c = pending.get(pid);
      if (c && c.name === resumed[1]) {
        pending.delete(pid);
        finish(c, resumed[2]!);
      }
      continue;
    }
    const call = CALL.exec(rest);
    if (!call) continue;
    const c: Syscall = { pid, t, name: call[1]!, args: '', ret: '?', dur: Number.NaN };
    calls.push(c);
    if (call[2]!.endsWith('<unfinished ...>')) {
      c.args = call[2]!.slice(0, -'<unfinished ...>'.length);
      pending.set(pid, c);
    } else {
      finish(c, call[2]!);
    }
  }
  return { calls, ends };
}

/** The phases in the order main.c runs them; each starts where the previous one ends. */
export const PHASES = [
  'exec the launcher, load libc, parse arguments, check protected paths',
  'outer namespaces (net, ipc, uts; user when not root), lo up, relay listeners',
  'relay: fork, confine (capabilities, Landlock, seccomp), report ready',
  'session uid, cgroup: make the groups, write the limits',
  'idmap helper: a process for the idmapped workspace\'s user namespace',
  'init: clone into a new pid namespace',
  'init joins the cgroup (write to cgroup.procs)',
  'new mount + cgroup namespace, new root (mounts, pivot_root)',
  'agent: fork, setsid, credentials, rlimits, env, signals, no_new_privs',
  'agent: Landlock ruleset',
  'agent: seccomp filter',
  'close fds, exec `/bin/true`, run it to exit',
  'teardown: init reaps and exits, launcher reaps, kills the relay',
  'clean-up: protected-path report, cgroup rmdir, launcher exit',
] as const;
export type Phase = (typeof PHASES)[number];

/** One traced start cut into phases: ms and syscall count per phase, and what init's cgroup join took. */
export interface PhaseRun {
  ms: Map<Phase, number>;
  stops: Map<Phase, number>;
  /** Wall time during which some process was inside one of the phase's syscalls (each -T less the run's smallest, strace's share), waits for another process left out, ms. */
  inKernel: Map<Phase, number>;
  /** Whole window: launcher execve → launcher gone, ms. */
  totalMs: number;
  totalStops: number;
  processes: number;
  /** Sum of init's writes to cgroup.procs, ms (0 when it joined none). */
  joinMs: number;
}

const end = (c: Syscall | undefined): number | undefined => (c === undefined ? undefined : c.t + (Number.isFinite(c.dur) ? c.dur : 0));
/** Calls that wait for another process; their -T is that process's time, counted where it runs. */
const WAITS = /^(wait4|waitid|rt_sigtimedwait|poll|ppoll|pselect6|select|nanosleep|clock_nanosleep)$/;
const isClone = (c: Syscall): boolean => /^(clone|clone3|fork|vfork)$/.test(c.name) && /^\d+$/.test(c.ret);

/** Length of the union of intervals, ms: two processes in the kernel at once (or one preempted by the other's stop) count once. */
function unionMs(spans: Array<[number, number]>): number {
  let total = 0;
  let reach = -Infinity;
  for (const [a, b] of spans.sort((x, y) => x[0] - y[0])) {
    if (b <= reach) continue;
    total += b - Math.max(a, reach);
    reach = b;
  }
  return total * 1000;
}

/** Cuts one trace into PHASES by marker syscalls of each process (roles found from the clones). */
export function attribute(trace: Trace): PhaseRun {
  const { calls, ends } = trace;
  const launcher = calls[0]?.pid;
  if (launcher === undefined) throw new Error('empty strace output');
  const of = (pid: number | undefined) => calls.filter((c) => c.pid === pid);
  const own = of(launcher);
  const clones = own.filter(isClone);
  // A clone's return value is the child's pid in the parent's pid namespace (init's child is
  // pid 2), so the child is the first process strace shows after the clone began instead.
  const firstSeen = new Map<number, number>();
  for (const c of calls) if (!firstSeen.has(c.pid)) firstSeen.set(c.pid, c.t);
  const taken = new Set<number>([launcher]);
  const childOf = (c: Syscall | undefined): number | undefined => {
    if (c === undefined) return undefined;
    const pid = [...firstSeen].find(([p, t]) => !taken.has(p) && t >= c.t)?.[0];
    if (pid !== undefined) taken.add(pid);
    return pid;
  };
  const relayClone = clones.find((c) => !/CLONE_NEW/.test(c.args));
  const idmapClone = clones.find((c) => /CLONE_NEWUSER/.test(c.args));
  const initClone = clones.find((c) => /CLONE_NEWPID/.test(c.args));
  const init = childOf(initClone);
  const initCalls = of(init);
  const agentClone = initCalls.find(isClone);
  const agentCalls = of(childOf(agentClone));
  const relay = childOf(relayClone);
  const readyRead = relayClone ? own.find((c) => c.t > relayClone.t && c.name === 'read') : undefined;
  const statusRead = initClone ? own.find((c) => c.t > initClone.t && c.name === 'read') : undefined;
  const relayWait = own.find((c) => c.name === 'wait4' && relay !== undefined && c.args.startsWith(`${relay},`));
  const landlockEnd = end(agentCalls.find((c) => c.name === 'landlock_restrict_self'));
  const seccompEnd = end(agentCalls.find((c) => c.name === 'seccomp' && c.args.includes('SECCOMP_SET_MODE_FILTER')));
  const agentExit = agentCalls.find((c) => c.name === 'exit_group');
  const markers: Array<number | undefined> = [
    own[0]!.t,
    own.find((c) => c.name === 'unshare')?.t,
    relayClone?.t,
    end(readyRead),
    idmapClone?.t,
    initClone?.t,
    initCalls[0]?.t,
    initCalls.find((c) => c.name === 'unshare')?.t,
    agentClone?.t,
    agentCalls.find((c) => c.name === 'landlock_create_ruleset')?.t,
    landlockEnd,
    seccompEnd,
    agentExit?.t,
    end(relayWait),
  ];
  const last = ends.get(launcher) ?? end(own.at(-1))!;
  const ms = new Map<Phase, number>();
  const stops = new Map<Phase, number>();
  const inKernel = new Map<Phase, number>();
  const floor = Math.min(...calls.map((c) => (Number.isFinite(c.dur) ? c.dur : Infinity)));
  const waits = (c: Syscall) => WAITS.test(c.name) || c === readyRead || c === statusRead;
  // A phase whose marker is missing (another build, no idmap helper) folds into the one before.
  const found = PHASES.map((p, i) => ({ p, t: markers[i] })).filter((x): x is { p: Phase; t: number } => x.t !== undefined);
  for (const [i, { p, t }] of found.entries()) {
    const next = found[i + 1]?.t ?? last;
    ms.set(p, Math.max(0, next - t) * 1000);
    const inside = calls.filter((c) => c.t >= t && c.t < next);
    stops.set(p, inside.length);
    inKernel.set(p, unionMs(inside.filter((c) => !waits(c) && Number.isFinite(c.dur) && c.dur > floor).map((c) => [c.t + floor, c.t + c.dur])));
  }
  const joinMs = initCalls
    .filter((c) => agentClone === undefined || c.t < agentClone.t)
    .filter((c) => c.name === 'write' && c.args.includes('"0", 1'))
    .reduce((s, c) => s + (Number.isFinite(c.dur) ? c.dur * 1000 : 0), 0);
  return {
    ms,
    stops,
    inKernel,
    totalMs: (last - own[0]!.t) * 1000,
    totalStops: calls.length,
    processes: new Set(calls.map((c) => c.pid)).size,
    joinMs,
  };
}

export const attributeFile = (path: string): PhaseRun => attribute(parseStrace(readFileSync(path, 'utf8')));

/** Untraced and traced wall times from Node (medians), to size strace's own cost. */
export interface Calibration {
  trueMs: number;
  launcherMs: number;
  noCgroupMs: number;
  tracedTrueMs: number;
  tracedLauncherMs: number;
  /** Syscalls strace stopped on for one `/bin/true` (its own, under strace). */
  trueStops: number;
}

/** What would be needed to take each phase off the start path (the ones a budget may ask to go). */
const NEEDED: Partial<Record<Phase, string>> = {
  'exec the launcher, load libc, parse arguments, check protected paths': 'the protected-path checks (one openat2 pair per name, again at exit) done once per workspace by the gateway, or a static launcher',
  'relay: fork, confine (capabilities, Landlock, seccomp), report ready': 'init started without waiting for the relay\'s ready byte (its listeners exist before the fork, so early connections queue), or no relay process',
  'session uid, cgroup: make the groups, write the limits': 'a cgroup made ahead (a pool of leaves with their limits written off the start path)',
  'idmap helper: a process for the idmapped workspace\'s user namespace': 'the user namespace taken from a process that exists anyway, or made once per session',
  'init joins the cgroup (write to cgroup.procs)': 'no move into a cgroup: on cgroup v2, clone3(CLONE_INTO_CGROUP) starts init inside its leaf without write-locking the threadgroup rwsem; on v1 only the `cgroup_favordynmods=true` boot option (Linux ≥ 6.7) spares the move its RCU grace period',
  'new mount + cgroup namespace, new root (mounts, pivot_root)': 'fewer mounts (each /dev node is a bind plus a mount_setattr) or a root prepared once per session and cloned',
  'agent: fork, setsid, credentials, rlimits, env, signals, no_new_privs': 'the command run by init itself (one process fewer), or fewer signal resets',
  'teardown: init reaps and exits, launcher reaps, kills the relay': 'fewer processes to reap (init and relay both end after the command)',
  'clean-up: protected-path report, cgroup rmdir, launcher exit': 'the protected-path report and the cgroup removal moved off the exit path',
};

/** Also paid by the `/bin/true` baseline row, so not part of the launcher's added time. */
const IN_BASELINE: Phase = 'close fds, exec `/bin/true`, run it to exit';
const JOIN: Phase = 'init joins the cgroup (write to cgroup.procs)';

/**
 * The markdown for section 2a: per phase the traced ms, the ms inside its own syscalls,
 * and an untraced estimate; strace's overhead; and which phases a +budget would not fit.
 */
export function phaseReport(runs: PhaseRun[], cal: Calibration, opts: { budgetMs: number; cgroup: string; addedMs: number }): string {
  const med = (f: (r: PhaseRun) => number) => median(runs.map(f));
  const tracedAdded = cal.tracedLauncherMs - cal.tracedTrueMs;
  const untracedAdded = cal.launcherMs - cal.trueMs;
  const stopsAdded = med((r) => r.totalStops) - cal.trueStops;
  // strace's cost per syscall stop: the traced-minus-untraced difference of (launcher − /bin/true), per extra stop.
  const perStop = stopsAdded > 0 ? Math.max(0, (tracedAdded - untracedAdded) / stopsAdded) : 0;
  const rows = PHASES.filter((p) => runs.some((r) => r.ms.has(p))).map((p) => {
    const ms = med((r) => r.ms.get(p) ?? 0);
    const stops = med((r) => r.stops.get(p) ?? 0);
    const inKernel = med((r) => r.inKernel.get(p) ?? 0);
    // Never below the time its own syscalls took; the gaps between them are mostly strace's.
    return { p, ms, stops, inKernel, est: Math.max(inKernel, ms - stops * perStop) };
  });
  const added = rows.filter((r) => r.p !== IN_BASELINE);
  const estSum = added.reduce((s, r) => s + r.est, 0);
  const table = rows.map(
    (r) =>
      `| ${r.p} | ${fmt(r.stops, 0)} | ${fmt(r.ms)} | ${fmt(r.inKernel)} | ${fmt(r.est)} | ${r.p === IN_BASELINE ? 'in the baseline' : `${fmt((100 * r.est) / estSum, 0)} %`} |`,
  );
  const cgroupAB = cal.launcherMs - cal.noCgroupMs;
  const join = med((r) => r.joinMs);
  const over = opts.addedMs - opts.budgetMs;
  // Largest phases first, until what is left fits the budget.
  const cut: typeof rows = [];
  let left = opts.addedMs;
  for (const r of [...added].sort((a, b) => b.est - a.est)) {
    if (left <= opts.budgetMs) break;
    cut.push(r);
    left -= r.est;
  }
  const signed = (n: number) => `${n >= 0 ? '+' : '−'}${fmt(Math.abs(n))}`;
  const verdict =
    over <= 0
      ? `Within the budget: +${fmt(opts.addedMs)} ms over \`/bin/true\` against +${fmt(opts.budgetMs)} ms.`
      : `**To fit +${fmt(opts.budgetMs)} ms** the launcher must lose ${fmt(over)} of its +${fmt(opts.addedMs)} ms; by this profile that takes the ${cut.length} largest phase${cut.length === 1 ? '' : 's'} going or shrinking: ` +
        cut.map((r) => `${r.p} (≈${fmt(r.est)} ms)${NEEDED[r.p] ? ` — needs ${NEEDED[r.p]}` : ''}`).join('; ') +
        '.' +
        (cut.some((r) => r.p === JOIN)
          ? ''
          : ` The cgroup's untraced cost (${signed(cgroupAB)} ms back to back, more after a quiet spell) is not all in what strace shows for it; taking it off the start needs ${NEEDED[JOIN]}.`);
  return [
    `**Where the start-up goes** (${runs.length} starts under \`strace -f -ttt -T\`, back to back; medians per phase; a phase runs from its first syscall to the next phase's first, across the launcher, relay, idmap helper, init and agent, all of which strace follows):`,
    '',
    '| phase | syscalls | ms under strace | ms in its own syscalls | ms untraced (est.) | share |',
    '|---|---:|---:|---:|---:|---:|',
    ...table,
    `| **sum** (without the baseline's exec) | ${fmt(med((r) => r.totalStops), 0)} | ${fmt(med((r) => r.totalMs))} | | ${fmt(estSum)} | |`,
    '',
    `strace costs far more than the launcher: one start takes ${fmt(cal.tracedLauncherMs)} ms under strace against ${fmt(cal.launcherMs)} ms untraced (\`/bin/true\`: ${fmt(cal.tracedTrueMs)} against ${fmt(cal.trueMs)}), ` +
      `≈${fmt(perStop * 1000, 0)} µs per syscall stop over the ${fmt(stopsAdded, 0)} stops the launcher makes beyond \`/bin/true\`'s. ` +
      '"ms in its own syscalls" is the wall time during which some process was inside one of the phase\'s calls (each call\'s `-T` less the smallest `-T` of the run, strace\'s share of every call; calls that wait for another process left out). ' +
      `"ms untraced (est.)" takes ${fmt(perStop * 1000, 0)} µs off the phase for each of its stops, but never goes below its own syscalls' time; summed, it should come near the untraced added time (+${fmt(untracedAdded)} ms in these same runs). ` +
      'It is an estimate: a stop does not cost strace the same everywhere (forks and execs cost it more), and a wait that the tracer itself shortens does not show. ' +
      `${opts.cgroup} Untraced, in the same runs, the launcher took ${signed(cgroupAB)} ms with its cgroup against \`GATEHOUSE_SANDBOX_SIMULATE_NO_CGROUP=1\`; under strace init's join (its writes to \`cgroup.procs\`) took ${fmt(join)} ms. ` +
      'On cgroup v1 a move into a cgroup write-locks the threadgroup rwsem, which waits for an RCU grace period; how long that takes depends on how idle the other cores are (see the quiet-spell starts above), and strace\'s own context switches end grace periods early, so the traced join understates it.',
    '',
    `Processes per start: launcher, relay, idmap helper, init, agent (strace saw ${fmt(med((r) => r.processes), 0)} make syscalls; the idmap helper is killed once its namespace is open and may make none). ${verdict}`,
  ].join('\n');
}

/** Which cgroup hierarchy the launcher finds at /sys/fs/cgroup, from /proc/self/mountinfo. */
export function cgroupVersion(mountinfo: string): string {
  const mounts = mountinfo
    .split('\n')
    .map((l) => ({ at: l.split(' ')[4] ?? '', fs: l.split(' - ')[1]?.split(' ')[0] ?? '' }))
    .filter((m) => m.fs === 'cgroup' || m.fs === 'cgroup2');
  if (mounts.some((m) => m.at === '/sys/fs/cgroup' && m.fs === 'cgroup2')) return 'This machine has cgroup v2 at /sys/fs/cgroup';
  const v1 = mounts.filter((m) => m.fs === 'cgroup' && m.at.startsWith('/sys/fs/cgroup/')).length;
  const v2Elsewhere = mounts.some((m) => m.fs === 'cgroup2');
  if (v1 > 0)
    return `This machine has cgroup v1 at /sys/fs/cgroup (${v1} hierarchies${v2Elsewhere ? '; a v2 hierarchy is mounted elsewhere too, and the launcher only looks at /sys/fs/cgroup itself' : ''}), so the launcher makes three groups (pids, memory, cpu) and init moves into each`;
  return 'This machine has no cgroup hierarchy at /sys/fs/cgroup';
}
