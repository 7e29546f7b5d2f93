/**
 * Sandboxed agent: launcher start-up over /bin/true beside bwrap and unshare
 * (interleaved), and per-call latency from inside the sandbox through the
 * relay vs from outside on the session socket (and on TCP with a token).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/log.js';
import { startGateway } from '../src/app/gateway.js';
import { buildLauncherArgs, launcherPath } from '../src/sandbox/launcher.js';
import { mintToken } from '../src/server/tokens.js';
import { attributeFile, cgroupVersion, parseStrace, phaseReport, type PhaseRun } from './sandbox-phases.js';
import { BENCH_SECRET, GATEHOUSE_ECHO_TOOL, writeGatehouseConfig } from './lib/gatehouse-config.js';
import { MemorySecretStore } from './lib/memory-store.js';
import { DIST_BENCH, freePort, ROOT, startProc, type Proc } from './lib/procs.js';
import { fmt, goal, machineLine, median, ratio, rotated } from './lib/stats.js';

/** Bench only: measure another build of the launcher (e.g. a patched copy) without touching native/. */
export const LAUNCHER_ENV = 'GATEHOUSE_BENCH_LAUNCHER';
const benchLauncher = (): string => process.env[LAUNCHER_ENV] ?? launcherPath();

export interface SandboxOptions {
  rounds: number;
  startsPerRound: number;
  relayRounds: number;
  relayCalls: number;
  /** Starts traced with strace for the phase profile. */
  tracedStarts: number;
}
export const SANDBOX_FULL: SandboxOptions = { rounds: 10, startsPerRound: 30, relayRounds: 7, relayCalls: 300, tracedStarts: 21 };
export const SANDBOX_QUICK: SandboxOptions = { rounds: 3, startsPerRound: 6, relayRounds: 2, relayCalls: 60, tracedStarts: 5 };

/** Issue #21: launcher start-up over `/bin/true` ≤ +4 ms. */
const BUDGET_MS = 4;

interface Starter {
  name: string;
  cmd: string;
  args: string[];
  note: string;
  ms: number[];
  skip?: string;
}

/** As root the launcher runs the command as nobody (65534): the workspace must be its own, as with `gatehouse run`. */
function agentWorkspace(dir: string): string {
  chmodSync(dir, 0o755);
  if (process.getuid?.() === 0) chownSync(dir, 65534, 65534);
  return dir;
}

function which(cmd: string): string | undefined {
  for (const d of (process.env.PATH ?? '/usr/bin:/bin').split(':')) if (existsSync(join(d, cmd))) return join(d, cmd);
  return undefined;
}

/** Wall time of one spawn-to-exit, in ms (spawnSync: no event loop in the way). */
function timeOnce(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.error?.message ?? String(r.stderr).trim()}`);
  return ms;
}

const ALONE_STARTS = 15;
const ALONE_QUIET_MS = 200;

/** Medians of starts that each follow a quiet spell: the launcher with and without its per-sandbox cgroup, and /bin/true. */
async function startsAlone(baseline: Starter, launcher: Starter): Promise<{ baseline: number; launcher: number; noCgroup: number }> {
  const noCgroup = { ...process.env, GATEHOUSE_SANDBOX_SIMULATE_NO_CGROUP: '1' };
  const runs: Array<[number[], () => number]> = [
    [[], () => timeOnce(baseline.cmd, baseline.args)],
    [[], () => timeOnce(launcher.cmd, launcher.args)],
    [[], () => timeOnce(launcher.cmd, launcher.args, noCgroup)],
  ];
  for (let i = 0; i < ALONE_STARTS; i++) {
    for (const [xs, start] of rotated(runs, i)) {
      await new Promise((res) => setTimeout(res, ALONE_QUIET_MS));
      xs.push(start());
    }
  }
  const [b, l, n] = runs.map(([xs]) => median(xs));
  return { baseline: b!, launcher: l!, noCgroup: n! };
}

/**
 * The launcher and `/bin/true` under strace, interleaved with untraced starts of both
 * (and of the launcher without its cgroup) so that strace's own cost can be sized.
 */
async function profileStarts(strace: string, baseline: Starter, launcher: Starter, opts: SandboxOptions, addedMs: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-strace-'));
  try {
    const traced = (cmd: string, args: string[], out: string) => ['-f', '-ttt', '-T', '-o', out, cmd, ...args];
    const noCgroup = { ...process.env, GATEHOUSE_SANDBOX_SIMULATE_NO_CGROUP: '1' };
    const runs: PhaseRun[] = [];
    const trueStops: number[] = [];
    const ms = { true: [] as number[], launcher: [] as number[], noCgroup: [] as number[], tracedTrue: [] as number[], tracedLauncher: [] as number[] };
    for (let i = 0; i < opts.tracedStarts; i++) {
      const tOut = join(dir, `true-${i}.txt`);
      const lOut = join(dir, `launcher-${i}.txt`);
      const jobs: Array<() => void> = [
        () => ms.true.push(timeOnce(baseline.cmd, baseline.args)),
        () => ms.launcher.push(timeOnce(launcher.cmd, launcher.args)),
        () => ms.noCgroup.push(timeOnce(launcher.cmd, launcher.args, noCgroup)),
        () => ms.tracedTrue.push(timeOnce(strace, traced(baseline.cmd, baseline.args, tOut))),
        () => ms.tracedLauncher.push(timeOnce(strace, traced(launcher.cmd, launcher.args, lOut))),
      ];
      for (const job of rotated(jobs, i)) job();
      runs.push(attributeFile(lOut));
      trueStops.push(parseStrace(readFileSync(tOut, 'utf8')).calls.length);
      await new Promise((res) => setImmediate(res));
    }
    return phaseReport(
      runs,
      {
        trueMs: median(ms.true),
        launcherMs: median(ms.launcher),
        noCgroupMs: median(ms.noCgroup),
        tracedTrueMs: median(ms.tracedTrue),
        tracedLauncherMs: median(ms.tracedLauncher),
        trueStops: median(trueStops),
      },
      { budgetMs: BUDGET_MS, addedMs, cgroup: `${cgroupVersion(readFileSync('/proc/self/mountinfo', 'utf8'))} (kernel ${release()}).` },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function startupTable(opts: SandboxOptions, log: (s: string) => void): Promise<{ md: string; launcherAdded: number }> {
  const machine = machineLine();
  const ws = agentWorkspace(mkdtempSync(join(tmpdir(), 'gatehouse-bench-ws-')));
  const sockDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-sock-'));
  try {
    const launcher = benchLauncher();
    const bwrap = which('bwrap');
    const unshare = which('unshare');
    const starters: Starter[] = [
      { name: '`/bin/true` (baseline)', cmd: '/bin/true', args: [], note: 'fork + exec from Node', ms: [] },
      {
        name: '**gatehouse-sandbox**',
        cmd: launcher,
        args: buildLauncherArgs({ socketPath: join(sockDir, 'mcp.sock'), port: 8931, workspace: ws, command: ['/bin/true'] }),
        note: 'user/net/mount/pid/ipc/uts/cgroup ns, new root, relay on lo, no_new_privs, Landlock, seccomp, rlimits',
        ms: [],
      },
      { name: '`bwrap --unshare-all`', cmd: bwrap ?? 'bwrap', args: ['--unshare-all', '--die-with-parent', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '/bin/true'], note: 'all namespaces, read-only / bind, /proc, /dev; no Landlock, no seccomp', ms: [], ...(bwrap ? {} : { skip: 'bwrap not installed (apt-get install -y bubblewrap)' }) },
      { name: '`unshare -Urnmpf --mount-proc`', cmd: unshare ?? 'unshare', args: ['-Urnmpf', '--mount-proc', '/bin/true'], note: 'user/net/mount/pid ns and /proc only', ms: [], ...(unshare ? {} : { skip: 'unshare not found' }) },
      { name: '`unshare -Urn`', cmd: unshare ?? 'unshare', args: ['-Urn', '/bin/true'], note: 'user + net ns only', ms: [], ...(unshare ? {} : { skip: 'unshare not found' }) },
    ];
    if (!existsSync(launcher)) starters[1]!.skip = `launcher not built (${launcher}); run npm run build`;
    const live = starters.filter((s) => s.skip === undefined);
    for (const s of live) for (let i = 0; i < 5; i++) timeOnce(s.cmd, s.args); // warm the page cache
    const baseline = starters[0]!;
    const added = new Map<Starter, number[]>(live.map((s) => [s, []]));
    for (let r = 0; r < opts.rounds; r++) {
      const perRound = new Map<Starter, number[]>(live.map((s) => [s, []]));
      // Interleaved one start at a time, order rotated each round.
      for (let i = 0; i < opts.startsPerRound; i++) for (const s of rotated(live, r + i)) perRound.get(s)!.push(timeOnce(s.cmd, s.args));
      for (const s of live) {
        s.ms.push(...perRound.get(s)!);
        added.get(s)!.push(median(perRound.get(s)!) - median(perRound.get(baseline)!));
      }
      await new Promise((res) => setImmediate(res));
    }
    log(`start-up: ${live.map((s) => `${s.name} ${fmt(median(s.ms))} ms`).join(', ')}`);
    const launcherAdded = starters[1]!.skip === undefined ? median(added.get(starters[1]!)!) : Number.NaN;
    const alone = starters[1]!.skip === undefined ? await startsAlone(baseline, starters[1]!) : undefined;
    const bwrapAdded = starters[2]!.skip === undefined ? median(added.get(starters[2]!)!) : undefined;
    const strace = which('strace');
    const profile =
      starters[1]!.skip !== undefined
        ? ''
        : strace === undefined
          ? 'No phase profile: strace not installed (apt-get install -y strace).'
          : await profileStarts(strace, baseline, starters[1]!, opts, launcherAdded);
    const rows = starters.map((s) =>
      s.skip !== undefined
        ? `| ${s.name} | – | – | ${s.skip} |`
        : `| ${s.name} | ${fmt(median(s.ms))} | ${s === baseline ? '–' : `+${fmt(median(added.get(s)!))}`} | ${s.note} |`,
    );
    const md = [
      '### 2a. Sandbox start-up over `/bin/true`',
      '',
      '| launcher | median ms | added over `/bin/true` ms | what it sets up |',
      '|---|---:|---:|---|',
      ...rows,
      '',
      `Goal: gatehouse-sandbox start-up ≤ +${BUDGET_MS} ms over \`/bin/true\` (median) — ${goal(launcherAdded <= BUDGET_MS)} (${fmt(median(starters[1]!.ms))} ms, +${fmt(launcherAdded)} over \`/bin/true\`); ` +
        `faster than \`bwrap --unshare-all\` — ${goal(bwrapAdded === undefined ? undefined : launcherAdded < bwrapAdded)}${bwrapAdded === undefined ? '' : ` (added time ${ratio(launcherAdded, bwrapAdded)} bwrap's)`}. ` +
        `${opts.rounds} rounds × ${opts.startsPerRound} starts each, one start of each launcher at a time in rotated order; "added" is the median over rounds of the same-round difference of medians. ` +
        'Spawned with `spawnSync` from Node, so every time includes Node\'s fork/exec (the baseline row).' +
        (alone === undefined
          ? ''
          : ` **Started alone** (${ALONE_STARTS} starts, each after ${ALONE_QUIET_MS} ms of quiet, as a user's \`gatehouse run\` or a connector's start is): gatehouse-sandbox ${fmt(alone.launcher)} ms (+${fmt(alone.launcher - alone.baseline)} over \`/bin/true\`), ` +
            `${fmt(alone.noCgroup)} ms (+${fmt(alone.noCgroup - alone.baseline)}) with the launcher told that no cgroup can be made (its test switch GATEHOUSE_SANDBOX_SIMULATE_NO_CGROUP=1). ` +
            'Back-to-back starts, as in the table, find the kernel ready to move one more process into a new cgroup; after a quiet spell the first move waits, which the table above does not show.'),
      '',
      ...(profile === '' ? [] : [profile, '']),
      machine,
    ].join('\n');
    return { md, launcherAdded };
  } finally {
    rmSync(ws, { recursive: true, force: true });
    rmSync(sockDir, { recursive: true, force: true });
  }
}

function runClient(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ p50: number; p99: number }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString('utf8')).slice(-3000)));
    child.once('error', reject);
    child.once('close', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !line.startsWith('{')) return reject(new Error(`${cmd} exited ${code}: ${err || out}`));
      resolvePromise(JSON.parse(line) as { p50: number; p99: number });
    });
  });
}

async function relayTable(opts: SandboxOptions, log: (s: string) => void): Promise<{ md: string; added: number }> {
  const machine = machineLine();
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-bench-relay-'));
  chmodSync(root, 0o755);
  const ws = join(root, 'workspace');
  mkdirSync(ws);
  agentWorkspace(ws);
  const procs: Proc[] = [];
  try {
    const upstream = await startProc(process.execPath, [join(DIST_BENCH, 'procs', 'echo-upstream.js'), '0'], /LISTENING (\d+)/);
    procs.push(upstream);
    const dirs = writeGatehouseConfig(root, `http://127.0.0.1:${upstream.match[1]}/mcp`);
    const gw = await startGateway({
      dirs,
      port: 0,
      logger: createLogger({ level: 'warn', destination: process.stderr }),
      secrets: new MemorySecretStore({ [BENCH_SECRET.name]: BENCH_SECRET.value }),
      upstreamWaitMs: 10_000,
    });
    try {
      const port = await freePort();
      const session = await gw.sandboxes.create('bench-agent', port);
      const token = (await mintToken(gw.keys, 'bench-agent', 3_600_000)).token;
      const client = join(DIST_BENCH, 'sandbox-client.js');
      const n = String(opts.relayCalls);
      const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
      const paths = [
        {
          name: '**inside the sandbox** → relay → session socket',
          cmd: benchLauncher(),
          args: buildLauncherArgs({ socketPath: session.socketPath, port, workspace: ws, ro: [ROOT], command: [process.execPath, client, session.url, GATEHOUSE_ECHO_TOOL, n] }),
          p50: [] as number[],
          p99: [] as number[],
        },
        { name: 'outside → session socket (no relay)', cmd: process.execPath, args: [client, session.url, GATEHOUSE_ECHO_TOOL, n, '--socket', session.socketPath], p50: [] as number[], p99: [] as number[] },
        { name: 'outside → TCP with bearer token', cmd: process.execPath, args: [client, gw.url, GATEHOUSE_ECHO_TOOL, n, '--token', token], p50: [] as number[], p99: [] as number[] },
      ];
      const added: number[] = [];
      for (let r = 0; r < opts.relayRounds; r++) {
        for (const p of rotated(paths, r)) {
          const res = await runClient(p.cmd, p.args, env);
          p.p50.push(res.p50);
          p.p99.push(res.p99);
        }
        added.push(paths[0]!.p50.at(-1)! - paths[1]!.p50.at(-1)!);
        log(`relay round ${r + 1}/${opts.relayRounds}: ${paths.map((p) => fmt(p.p50.at(-1)!, 3)).join(' / ')} ms`);
      }
      await gw.sandboxes.close(session.id);
      const relayAdded = median(added);
      const base = paths[1]!;
      const rows = paths.map((p) => {
        const d = median(p.p50.map((v, i) => v - base.p50[i]!));
        return `| ${p.name} | ${fmt(median(p.p50), 3)} | ${fmt(median(p.p99), 3)} | ${p === base ? '–' : `${d >= 0 ? '+' : ''}${fmt(d, 3)}`} |`;
      });
      const md = [
        '### 2b. Per-call latency from inside the sandbox (through the relay) vs outside',
        '',
        '| agent → gateway | p50 ms | p99 ms | added p50 ms vs session socket |',
        '|---|---:|---:|---:|',
        ...rows,
        '',
        `Goal: relay adds ≤ 0.3 ms p50 — ${goal(relayAdded <= 0.3)} (${relayAdded >= 0 ? '+' : ''}${fmt(relayAdded, 3)} ms). ` +
          `The same client (Node, lean Streamable HTTP client, one session, ${opts.relayCalls} sequential \`tools/call\` after 60 warm-up calls) runs in a fresh process per round; ${opts.relayRounds} interleaved rounds; medians over rounds, "added" paired per round. ` +
          'Inside: `gatehouse-sandbox --ro <repo> --workspace <tmp>` (full confinement), the client talks to `127.0.0.1:PORT` in the sandbox\'s own network namespace; the relay carries it to the session\'s unix socket. ' +
          'Same in-process gateway (policy, durable audit, secret header, redaction) and echo upstream for every row.',
        '',
        machine,
      ].join('\n');
      return { md, added: relayAdded };
    } finally {
      await gw.close(1000);
    }
  } finally {
    for (const p of procs) await p.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

export async function benchSandbox(opts: SandboxOptions, log: (s: string) => void): Promise<string> {
  const a = await startupTable(opts, log);
  const b = await relayTable(opts, log);
  const which = process.env[LAUNCHER_ENV] ? `\n\nLauncher measured: ${benchLauncher()} (from ${LAUNCHER_ENV}), not native/build.` : '';
  return `${a.md}\n\n${b.md}${which}`;
}
