/**
 * Confined stdio connectors (issue #15): the time from creating a connector's
 * transport to a completed `initialize` + `tools/list` with the SDK Client,
 * confined under gatehouse-sandbox (the default) beside `sandbox: off` (under
 * gatehouse-reaper), for a minimal SDK server and the default registry's
 * server-everything, interleaved; then where the added time goes: creating
 * the transport, the launcher's set-up, Node's start-up inside the sandbox.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Dirs } from '../src/config/paths.js';
import { silentLogger } from '../src/log.js';
import { StdioConnectorSchema, type StdioConnector } from '../src/registry/schema.js';
import type { SecretResolver } from '../src/secrets/resolve.js';
import { connectorConfiner, planConnector } from '../src/sandbox/confine-connector.js';
import { stdioTransport, type ConfineStdio } from '../src/upstreams/stdio-transport.js';
import { reaperPath, type StdioServer } from '../src/upstreams/stdio.js';
import { DIST_BENCH, ROOT } from './lib/procs.js';
import { fmt, goal, machineLine, median, quantile, rotated } from './lib/stats.js';

export interface ConnectorsOptions {
  /** Starts per target (one of each target per round, order rotated). */
  rounds: number;
  /** Untimed starts of each target first (page cache, launcher binary). */
  warmup: number;
}
export const CONNECTORS_FULL: ConnectorsOptions = { rounds: 20, warmup: 2 };
export const CONNECTORS_QUICK: ConnectorsOptions = { rounds: 6, warmup: 1 };

const GOAL_MS = 10;

/** The connectors carry no `${secret:}`: rendering is the identity. */
const noSecrets: SecretResolver = { render: async (v) => v };

interface Server {
  label: string;
  name: string;
  args: string[];
}
const SERVERS: Server[] = [
  { label: 'minimal SDK server (`test/fixtures/upstream.mjs stdio`)', name: 'minimal', args: [join(ROOT, 'test', 'fixtures', 'upstream.mjs'), 'stdio'] },
  // As registry/everything.yaml has it: relative to the registry's parent (baseDir).
  { label: 'server-everything (default registry)', name: 'everything', args: ['node_modules/@modelcontextprotocol/server-everything/dist/index.js', 'stdio'] },
];

interface Target {
  server: Server;
  confined: boolean;
  connector: StdioConnector;
  total: number[];
  /** Transport created: secrets rendered, plan made, egress socket open (confined). */
  prepare: number[];
  /** Transport created → child spawned (the 'spawn' event). */
  spawn: number[];
  /** Spawned → initialize answered (and `initialized` sent). */
  init: number[];
  list: number[];
}

/** As the registry loader builds it: schema defaults plus the file it came from. */
function connectorOf(s: Server, confined: boolean, registryDir: string): StdioConnector {
  const parsed = StdioConnectorSchema.parse({ name: s.name, kind: 'stdio', command: 'node', args: s.args, env: {}, ...(confined ? {} : { sandbox: 'off' }) });
  return { ...parsed, file: join(registryDir, `${s.name}.yaml`) };
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

/** One start: transport → connect (initialize) → listTools; closed (untimed) before returning. */
async function startOnce(t: Target, confine: ConfineStdio, record: boolean): Promise<void> {
  const t0 = now();
  const transport = await stdioTransport(t.connector, { baseDir: ROOT, secrets: noSecrets, log: silentLogger, confine });
  const t1 = now();
  let t2 = Number.NaN;
  const start = transport.start.bind(transport);
  transport.start = async () => {
    await start();
    t2 = now();
  };
  const client = new Client({ name: 'gatehouse-bench', version: '0.0.0' });
  try {
    await client.connect(transport);
    const t3 = now();
    const { tools } = await client.listTools();
    const t4 = now();
    if (tools.length === 0) throw new Error(`${t.connector.name}: tools/list returned no tools`);
    if (record) {
      t.total.push(t4 - t0);
      t.prepare.push(t1 - t0);
      t.spawn.push(t2 - t1);
      t.init.push(t3 - t2);
      t.list.push(t4 - t3);
    }
  } finally {
    await client.close();
  }
}

/** Milliseconds on the realtime clock, as the child's `performance.timeOrigin` gives them. */
const epoch = (): number => performance.timeOrigin + performance.now();

const MARK = join(DIST_BENCH, 'procs', 'start-mark.js');

/** One start's phases, from the child's own start mark. */
interface Split {
  /** spawn → the server's Node process started: the launcher's set-up (or the reaper's). */
  toNode: number;
  /** Node started → `initialize` answered: Node's start-up and the server's module loading. */
  toAnswer: number;
}

const INITIALIZE = `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'gatehouse-bench', version: '0.0.0' } } })}\n`;

/** Spawns a server's command line as its transport would, with the start mark preloaded; times it to the `initialize` answer. */
function splitOnce(server: StdioServer): Promise<Split> {
  return new Promise((done, fail) => {
    const t0 = epoch();
    const child = spawn(server.command, server.args, { env: server.env, cwd: server.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    let node: number | undefined;
    child.stderr.on('data', (b: Buffer) => {
      err = (err + b.toString('utf8')).slice(-4000);
      node ??= Number(/GATEHOUSE_BENCH_T0 ([\d.]+)/.exec(err)?.[1] ?? Number.NaN) || undefined;
    });
    child.stdout.once('data', () => {
      const t2 = epoch();
      child.stdin.end();
      child.once('exit', () => (node === undefined ? fail(new Error(`no start mark: ${err}`)) : done({ toNode: node - t0, toAnswer: t2 - node })));
    });
    child.once('error', fail);
    child.once('exit', (code) => code !== 0 && fail(new Error(`${server.command} exited ${code}: ${err}`)));
    child.stdin.write(INITIALIZE);
  });
}

/**
 * Where the added time goes: each server's real command line, confined (what
 * `confine()` returns: the launcher) and off (under the reaper, as stdio.ts
 * runs it), with the start mark preloaded and its folder bound read-only.
 */
async function splits(dirs: Dirs, confine: ConfineStdio, opts: ConnectorsOptions): Promise<Map<string, Split[]>> {
  const reaper = reaperPath();
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: process.env.HOME ?? '/', LANG: process.env.LANG ?? 'C.UTF-8' };
  const lines: Array<{ key: string; server: StdioServer; release(): void }> = [];
  for (const s of SERVERS) {
    const parsed = StdioConnectorSchema.parse({ name: s.name, kind: 'stdio', command: 'node', args: [`--import=${MARK}`, ...s.args], sandbox: { ro: [dirname(MARK)] } });
    const c: StdioConnector = { ...parsed, file: join(dirs.registry, `${s.name}.yaml`) };
    const server: StdioServer = { command: process.execPath, args: c.args, env, cwd: ROOT };
    const confined = await confine(c, server, silentLogger);
    lines.push({ key: `${s.name} confined`, server: confined.server, release: () => confined.release() });
    // The same launch without the per-sandbox cgroup (the launcher's test switch, read from its own environment, not passed inside):
    // what joining the cgroup costs before the command starts.
    lines.push({ key: `${s.name} nocgroup`, server: { ...confined.server, env: { ...confined.server.env, GATEHOUSE_SANDBOX_SIMULATE_NO_CGROUP: '1' } }, release: () => undefined });
    const off = reaper === undefined ? server : { ...server, command: reaper, args: ['--parent', String(process.pid), '--', process.execPath, ...c.args] };
    lines.push({ key: `${s.name} off`, server: off, release: () => undefined });
  }
  const out = new Map<string, Split[]>(lines.map((l) => [l.key, []]));
  try {
    for (const l of lines) await splitOnce(l.server);
    for (let r = 0; r < opts.rounds; r++) for (const l of rotated(lines, r)) out.get(l.key)!.push(await splitOnce(l.server));
  } finally {
    for (const l of lines) l.release();
  }
  return out;
}

/** The confined transport's own preparation, split: the plan alone, then the whole confine() (plan + egress socket). */
async function prepareSplit(dirs: Dirs, confine: ConfineStdio, opts: ConnectorsOptions): Promise<{ plan: number[]; confine: number[] }> {
  const c = connectorOf(SERVERS[0]!, true, dirs.registry);
  const server = { command: process.execPath, args: c.args, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, cwd: ROOT };
  const out = { plan: [] as number[], confine: [] as number[] };
  for (let i = 0; i < opts.rounds * 5; i++) {
    const t0 = now();
    planConnector(c, server, { dirs });
    const t1 = now();
    const confined = await confine(c, server, silentLogger);
    const t2 = now();
    confined.release();
    out.plan.push(t1 - t0);
    out.confine.push(t2 - t1);
  }
  return out;
}

export async function benchConnectors(opts: ConnectorsOptions, log: (s: string) => void): Promise<string> {
  const machine = machineLine();
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-bench-conn-'));
  const dirs: Dirs = { state: join(root, 'state'), registry: join(root, 'registry'), policies: join(root, 'policies') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  try {
    // No egress proxy: the bench servers connect nowhere (a connection out would be refused).
    const confine = connectorConfiner({ dirs });
    const targets: Target[] = SERVERS.flatMap((server) =>
      [true, false].map((confined) => ({ server, confined, connector: connectorOf(server, confined, dirs.registry), total: [], prepare: [], spawn: [], init: [], list: [] })),
    );
    for (let i = 0; i < opts.warmup; i++) for (const t of targets) await startOnce(t, confine, false);
    for (let r = 0; r < opts.rounds; r++) {
      for (const t of rotated(targets, r)) await startOnce(t, confine, true);
      if ((r + 1) % 5 === 0 || r + 1 === opts.rounds) log(`connectors round ${r + 1}/${opts.rounds}: ${targets.map((t) => fmt(t.total.at(-1)!, 1)).join(' / ')} ms`);
    }
    const split = await splits(dirs, confine, opts);
    const prep = await prepareSplit(dirs, confine, opts);
    const phase = (key: string, k: keyof Split): number => median(split.get(key)!.map((x) => x[k]));

    const added = new Map<Target, number[]>();
    for (const t of targets.filter((x) => x.confined)) {
      const off = targets.find((x) => x.server === t.server && !x.confined)!;
      added.set(t, t.total.map((v, i) => v - off.total[i]!));
    }
    const rows = targets.map((t) => {
      const d = added.get(t);
      const a = d === undefined ? '–' : `${median(d) >= 0 ? '+' : ''}${fmt(median(d), 1)}`;
      return `| ${t.server.label} | ${t.confined ? '**confined**' : '`sandbox: off` (reaper)'} | ${fmt(median(t.total), 1)} | ${fmt(quantile(t.total, 0.95), 1)} | ${a} | ${fmt(median(t.prepare), 2)} | ${fmt(median(t.spawn), 2)} | ${fmt(median(t.init), 1)} | ${fmt(median(t.list), 2)} |`;
    });
    const verdicts = [...added].map(([t, d]) => `${t.server.name} ${goal(median(d) <= GOAL_MS)} (${median(d) >= 0 ? '+' : ''}${fmt(median(d), 1)} ms)`);
    const md = [
      '### 8. Connector start-up, confined vs `sandbox: off` (transport → `initialize` + `tools/list`)',
      '',
      '| server | runs | p50 ms | p95 ms | added p50 ms | create transport ms | → spawned ms | → initialized ms | `tools/list` ms |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|',
      ...rows,
      '',
      `Goal: confinement adds ≤ ${GOAL_MS} ms to a connector's start (p50) — ${verdicts.join('; ')}. ` +
        `${opts.rounds} rounds (after ${opts.warmup} untimed), one start of each row per round in rotated order; "added" is the median over rounds of the same-round difference from the \`sandbox: off\` row of the same server. ` +
        'Each start: `stdioTransport()` as the gateway calls it (confined: `connectorConfiner({ dirs })`, no egress proxy), then the SDK `Client.connect()` and `listTools()`; the close is not timed. ' +
        'The phase columns are medians of each phase on its own: creating the transport (confined: the plan and the egress socket), spawn, the child\'s start-up to its `initialize` answer, `tools/list`.',
      '',
      '| server | runs | spawn → Node started ms | Node started → `initialize` answered ms |',
      '|---|---|---:|---:|',
      ...SERVERS.flatMap((sv) =>
        ['confined', 'nocgroup', 'off'].map((m) => `| ${sv.name} | ${m === 'confined' ? '**confined**' : m === 'nocgroup' ? 'confined, no per-sandbox cgroup' : '`sandbox: off` (reaper)'} | ${fmt(phase(`${sv.name} ${m}`, 'toNode'), 1)} | ${fmt(phase(`${sv.name} ${m}`, 'toAnswer'), 1)} |`),
      ),
      '',
      `Where the added time goes (medians, each part measured on its own, so they add up only roughly). ` +
        `Creating a confined transport: \`planConnector\` alone (realpaths, overlap check against the protected paths, private folder) ${fmt(median(prep.plan), 2)} ms, the whole \`confine()\` (plan + egress socket listening) ${fmt(median(prep.confine), 2)} ms (${prep.plan.length} times each). ` +
        `The second table runs each server's real command line (confined: what \`confine()\` returns; off: under the reaper as stdio.ts runs it) with \`--import=start-mark.js\`, which prints the Node process's \`performance.timeOrigin\`; ${opts.rounds} interleaved rounds. "Confined, no per-sandbox cgroup" is the confined launch with the launcher told that no cgroup can be made (its test switch GATEHOUSE_SANDBOX_SIMULATE_NO_CGROUP=1, in the launcher's own environment): the difference is what creating and joining the sandbox's cgroup costs before the command starts. ` +
        [...added]
          .map(([t, d]) => {
            const off = targets.find((x) => x.server === t.server && !x.confined)!;
            const prepare = median(t.prepare) - median(off.prepare);
            const launcher = phase(`${t.server.name} confined`, 'toNode') - phase(`${t.server.name} off`, 'toNode');
            const cgroup = phase(`${t.server.name} confined`, 'toNode') - phase(`${t.server.name} nocgroup`, 'toNode');
            const inside = phase(`${t.server.name} confined`, 'toAnswer') - phase(`${t.server.name} off`, 'toAnswer');
            const signed = (n: number) => `${n >= 0 ? '+' : ''}${fmt(n, 1)}`;
            return `${t.server.name}: ${signed(median(d))} ms ≈ ${signed(prepare)} creating the transport, ${signed(launcher)} launcher set-up before Node starts (of which ${signed(cgroup)} joining the per-sandbox cgroup), ${signed(inside)} Node's start-up and module loading inside the sandbox`;
          })
          .join('; ') +
        '.',
      '',
      machine,
    ].join('\n');
    return md;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
