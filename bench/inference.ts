/**
 * Model calls (issue #13): a streaming Anthropic Messages call straight to
 * the bench's provider simulator vs through Gatehouse's /llm/<provider>/ (and
 * through a peer LLM proxy from npm when one is installed): added time to
 * first byte, inter-event timing of a long stream, and 200 streams at once
 * (errors, gateway RSS). Every server runs in its own process; this process
 * only generates load. Rounds are interleaved (rotated order); medians over
 * rounds, differences paired per round.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gaps, ModelClient, type StreamResult } from './lib/model-client.js';
import { BENCH_PROVIDER_KEY, benchBody } from './lib/model-server.js';
import { cpuMs, DIST_BENCH, freePort, ROOT, rssMiB, startProc, type Proc } from './lib/procs.js';
import { fmt, fmtInt, goal, machineLine, median, quantile, rotated, sleep } from './lib/stats.js';
import { fsName } from './lib/fs-name.js';

export interface InferenceOptions {
  rounds: number;
  warmupCalls: number;
  /** Sequential streaming calls per path per round (TTFB). */
  ttfbCalls: number;
  /** Text deltas of a TTFB call (sent at once). */
  ttfbEvents: number;
  /** Sequential calls per path per round to a provider that waits `slowFirstMs` before its first byte. */
  slowCalls: number;
  slowFirstMs: number;
  /** The inter-event stream: deltas and the simulator's gap between two, ms. */
  gapEvents: number;
  gapMs: number;
  /** Streams at once, deltas per stream, gap, waves (memory is sampled across waves). */
  streams: number;
  streamEvents: number;
  streamGapMs: number;
  waves: number;
  /** Agents (tokens) the concurrent streams are spread over, under the per-agent connection limit. */
  agents: number;
}

export const INFERENCE_FULL: InferenceOptions = { rounds: 7, warmupCalls: 100, ttfbCalls: 300, ttfbEvents: 8, slowCalls: 100, slowFirstMs: 5, gapEvents: 2000, gapMs: 1, streams: 200, streamEvents: 300, streamGapMs: 10, waves: 3, agents: 4 };
export const INFERENCE_QUICK: InferenceOptions = { rounds: 2, warmupCalls: 20, ttfbCalls: 60, ttfbEvents: 8, slowCalls: 30, slowFirstMs: 5, gapEvents: 500, gapMs: 1, streams: 200, streamEvents: 100, streamGapMs: 10, waves: 1, agents: 4 };

/** Where the peer is looked for: the project's node_modules, then a side folder (not a devDependency: 95 packages). */
const PEERS_DIR = process.env.GATEHOUSE_BENCH_PEERS ?? join(tmpdir(), 'gatehouse-bench-peers');
const PORTKEY_VERSION = '1.15.2';
const PORTKEY_INSTALL = `npm install --prefix ${PEERS_DIR} --no-audit --no-fund --ignore-scripts @portkey-ai/gateway@${PORTKEY_VERSION}`;
function portkeyScript(): string | undefined {
  return [ROOT, PEERS_DIR].map((d) => join(d, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js')).find((f) => existsSync(f));
}

interface Path {
  name: string;
  note: string;
  /** One client per agent (the concurrent streams are spread over them); the first also carries the sequential calls. */
  clients: ModelClient[];
  pid: number;
  ttfb: { p50: number[]; p99: number[] };
  /** TTFB p50 per round with a provider that takes `slowFirstMs` to its first byte. */
  slowTtfb: number[];
  gap: { p50: number[]; p99: number[]; delayP50: number[]; delayP99: number[] };
  /** Calls made (for the audit check). */
  calls: number;
  waves: Wave[];
}

interface Wave {
  errors: number;
  firstError?: string;
  durationsS: number[];
  delays: number[];
  events: number;
  cpuMs: number;
  rss: { before: number; peak: number; after: number };
}

export async function benchInference(opts: InferenceOptions, log: (s: string) => void): Promise<string> {
  const machine = machineLine();
  const procs: Proc[] = [];
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-bench-llm-'));
  const shmRoot = existsSync('/dev/shm') ? mkdtempSync(join('/dev/shm', 'gatehouse-bench-llm-')) : undefined;
  const paths: Path[] = [];
  try {
    const sim = await startProc(process.execPath, [join(DIST_BENCH, 'procs', 'model-server.js'), BENCH_PROVIDER_KEY], /LISTENING (\d+)/);
    procs.push(sim);
    const simUrl = `http://127.0.0.1:${sim.match[1]}`;
    log(`provider simulator ${simUrl}`);
    const perAgent = Math.ceil(opts.streams / opts.agents);
    const direct = { url: `${simUrl}/v1/messages`, headers: { 'x-api-key': BENCH_PROVIDER_KEY } };
    paths.push(mkPath('direct', 'the simulator, no proxy', [new ModelClient(direct, opts.streams)], sim.child.pid ?? 0));

    const gatehouse = async (name: string, dir: string, note: string) => {
      const gh = await startProc(process.execPath, [join(DIST_BENCH, 'procs', 'gatehouse-inference.js'), dir, simUrl, String(opts.agents)], /^(\{.*\})$/m);
      procs.push(gh);
      const info = JSON.parse(gh.match[1] ?? '{}') as { base: string; tokens: string[] };
      const clients = info.tokens.map((t) => new ModelClient({ url: `${info.base}/v1/messages`, headers: { 'x-api-key': t } }, perAgent));
      paths.push(mkPath(name, note, clients, gh.child.pid ?? 0));
    };
    await gatehouse('Gatehouse', root, `agent token → provider key from the secret store, model list + policy, durable intent and outcome records (state on ${fsName(root)}), SSE split, read and redacted per event`);
    if (shmRoot) await gatehouse('Gatehouse, audit on tmpfs', shmRoot, 'the same, state in /dev/shm (fdatasync ≈ 0)');

    const pk = portkeyScript();
    if (pk) {
      const port = await freePort();
      const proc = await startProc(process.execPath, [pk, `--port=${port}`, '--headless'], /Ready for connections/, { env: { ...process.env, NODE_ENV: 'production' } });
      procs.push(proc);
      const target = { url: `http://127.0.0.1:${port}/v1/messages`, headers: { 'x-api-key': BENCH_PROVIDER_KEY, 'x-portkey-provider': 'anthropic', 'x-portkey-custom-host': `${simUrl}/v1` } };
      paths.push(mkPath(`Portkey AI gateway ${PORTKEY_VERSION}`, 'npm @portkey-ai/gateway, OSS build: provider routing, no auth/policy/audit of its own; the agent sends the provider key', [new ModelClient(target, opts.streams)], proc.child.pid ?? 0));
    } else {
      log(`Portkey AI gateway not found (${PORTKEY_INSTALL}); its row is left out`);
    }

    const ttfbBody = benchBody(opts.ttfbEvents, 0);
    let peerFailure: string | undefined;
    for (const p of [...paths]) {
      const first = await p.clients[0]!.stream(ttfbBody, false);
      p.calls++;
      if (first.error !== undefined && p.name.startsWith('Portkey')) {
        // A peer that cannot carry the call is a row saying so, not a failed section.
        peerFailure = first.error;
        paths.splice(paths.indexOf(p), 1);
        log(`${p.name}: ${first.error}; its row says so`);
        continue;
      }
      if (first.error !== undefined) throw new Error(`${p.name}: ${first.error}`);
      await sequential(p, ttfbBody, opts.warmupCalls);
    }
    log(`paths ready (${paths.map((p) => p.name).join(', ')}); ${opts.rounds} rounds`);

    const gapBody = benchBody(opts.gapEvents, opts.gapMs);
    const slowBody = benchBody(opts.ttfbEvents, 0, true, opts.slowFirstMs);
    for (let r = 0; r < opts.rounds; r++) {
      for (const p of rotated(paths, r)) {
        const xs = await sequential(p, ttfbBody, opts.ttfbCalls);
        p.ttfb.p50.push(quantile(xs, 0.5));
        p.ttfb.p99.push(quantile(xs, 0.99));
      }
      for (const p of rotated(paths, r)) p.slowTtfb.push(quantile(await sequential(p, slowBody, opts.slowCalls), 0.5));
      for (const p of rotated(paths, r)) {
        const s = await p.clients[0]!.stream(gapBody);
        p.calls++;
        if (s.error !== undefined || s.arrivals.length !== opts.gapEvents) throw new Error(`${p.name}: the ${opts.gapEvents}-event stream: ${s.error ?? `${s.arrivals.length} deltas`}`);
        const g = gaps(s.arrivals);
        p.gap.p50.push(quantile(g, 0.5));
        p.gap.p99.push(quantile(g, 0.99));
        p.gap.delayP50.push(quantile(s.delays, 0.5));
        p.gap.delayP99.push(quantile(s.delays, 0.99));
      }
      log(`round ${r + 1}/${opts.rounds}: ` + paths.map((p) => `${p.name} TTFB p50 ${fmt(p.ttfb.p50.at(-1)!)} ms, gap p99 ${fmt(p.gap.p99.at(-1)!)} ms`).join('; '));
    }

    const concurrent = paths.filter((p) => p.name !== 'Gatehouse, audit on tmpfs');
    const waveBody = benchBody(opts.streamEvents, opts.streamGapMs);
    for (let w = 0; w < opts.waves; w++) {
      for (const p of rotated(concurrent, w)) {
        p.waves.push(await wave(p, waveBody, opts));
        const x = p.waves.at(-1)!;
        log(`wave ${w + 1}/${opts.waves} ${p.name}: ${opts.streams} streams, ${x.errors} errors, RSS ${fmt(x.rss.before, 0)} → ${fmt(x.rss.peak, 0)} → ${fmt(x.rss.after, 0)} MiB`);
      }
    }
    return table(paths, opts, root, shmRoot, pk === undefined ? 'missing' : peerFailure ?? 'ran', machine);
  } finally {
    for (const p of paths) for (const c of p.clients) await c.close().catch(() => undefined);
    for (const p of procs.reverse()) await p.stop();
    rmSync(root, { recursive: true, force: true });
    if (shmRoot) rmSync(shmRoot, { recursive: true, force: true });
  }
}

async function sequential(p: Path, body: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = await p.clients[0]!.stream(body, false);
    p.calls++;
    if (s.error !== undefined) throw new Error(`${p.name}: ${s.error}`);
    out.push(s.ttfbMs);
  }
  return out;
}

/** `streams` calls at once, spread over the path's clients (agents); RSS sampled while they run. */
async function wave(p: Path, body: string, opts: InferenceOptions): Promise<Wave> {
  const before = rssMiB(p.pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(p.pid))), 50);
  const cpu0 = cpuMs(p.pid);
  const results = await Promise.all(
    Array.from({ length: opts.streams }, async (_, i): Promise<[StreamResult, number]> => {
      const t0 = performance.now();
      const s = await p.clients[i % p.clients.length]!.stream(body);
      return [s, (performance.now() - t0) / 1000];
    }),
  );
  const cpu = cpuMs(p.pid) - cpu0;
  clearInterval(sampler);
  p.calls += opts.streams;
  peak = Math.max(peak, rssMiB(p.pid));
  await sleep(1000);
  const bad = results.filter(([s]) => s.error !== undefined || s.arrivals.length !== opts.streamEvents);
  const firstError = bad[0]?.[0].error;
  return {
    errors: bad.length,
    ...(firstError !== undefined ? { firstError } : {}),
    durationsS: results.map(([, d]) => d),
    delays: results.flatMap(([s]) => s.delays),
    events: results.reduce((n, [s]) => n + s.arrivals.length, 0),
    cpuMs: cpu,
    rss: { before, peak, after: rssMiB(p.pid) },
  };
}

/** model.call.intent and model.call records in a gateway's audit log. */
function auditCounts(root: string): { intents: number; outcomes: number } {
  const dir = join(root, 'state', 'audit');
  let intents = 0;
  let outcomes = 0;
  for (const f of readdirSync(dir).filter((n) => /^audit.*\.jsonl$/.test(n))) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (line.includes('"event":"model.call.intent"')) intents++;
      else if (line.includes('"event":"model.call"')) outcomes++;
    }
  }
  return { intents, outcomes };
}

/** peer: 'ran', 'missing' (not installed), or the error its first call got. */
function table(paths: Path[], opts: InferenceOptions, root: string, shmRoot: string | undefined, peer: string, machine: string): string {
  const direct = paths[0]!;
  const paired = (xs: number[], base: number[]) => median(xs.map((x, i) => x - base[i]!));
  const addedTtfb = (p: Path) => paired(p.ttfb.p50, direct.ttfb.p50);
  const addedSlowTtfb = (p: Path) => paired(p.slowTtfb, direct.slowTtfb);
  const addedGapP99 = (p: Path) => paired(p.gap.p99, direct.gap.p99);
  const rows = paths.map((p) => {
    const self = p === direct;
    return `| ${[
      `**${p.name}**`,
      fmt(median(p.ttfb.p50)),
      fmt(median(p.ttfb.p99)),
      self ? '–' : `+${fmt(addedTtfb(p))}`,
      self ? fmt(median(p.slowTtfb)) : `+${fmt(addedSlowTtfb(p))}`,
      fmt(median(p.gap.p50)),
      fmt(median(p.gap.p99)),
      self ? '–' : `${addedGapP99(p) >= 0 ? '+' : ''}${fmt(addedGapP99(p))}`,
      fmt(median(p.gap.delayP50)),
      fmt(median(p.gap.delayP99)),
      p.note,
    ].join(' | ')} |`;
  });
  const litellm = '| **LiteLLM proxy** | – | – | – | – | – | – | – | – | – | not installable here (PyPI unreachable) |';
  const peerRow =
    peer === 'ran'
      ? []
      : peer === 'missing'
        ? [`| **Portkey AI gateway** | – | – | – | – | – | – | – | – | – | not installed: \`${PORTKEY_INSTALL}\` |`]
        : [`| **Portkey AI gateway ${PORTKEY_VERSION}** | – | – | – | – | – | – | – | – | – | installs and starts, but cannot carry the call here: ${peer.replace(/\|/g, '/').slice(0, 120)} |`];

  const ideal = (opts.streamEvents * opts.streamGapMs) / 1000;
  const concurrent = paths.filter((p) => p.waves.length > 0);
  const waveRows = concurrent.map((p) => {
    const errors = p.waves.reduce((n, w) => n + w.errors, 0);
    const durs = p.waves.flatMap((w) => w.durationsS);
    const delays = p.waves.flatMap((w) => w.delays);
    const events = p.waves.reduce((n, w) => n + w.events, 0);
    const cpu = p.waves.reduce((n, w) => n + w.cpuMs, 0);
    const rss = p.waves.map((w) => `${fmt(w.rss.before, 0)} → ${fmt(w.rss.peak, 0)} → ${fmt(w.rss.after, 0)}`).join('; ');
    const err = p.waves.find((w) => w.firstError !== undefined)?.firstError;
    return `| ${[
      `**${p.name}**`,
      fmtInt(opts.streams * p.waves.length),
      `${fmtInt(errors)}${err !== undefined ? ` (${err.replace(/\|/g, '/').slice(0, 80)})` : ''}`,
      `${fmt(median(durs))} / ${fmt(quantile(durs, 0.99))}`,
      fmt(median(delays)),
      fmt(quantile(delays, 0.99)),
      fmtInt((cpu * 1000) / Math.max(1, events)),
      rss,
    ].join(' | ')} |`;
  });

  const gate = paths.find((p) => p.name === 'Gatehouse')!;
  const shm = paths.find((p) => p.name === 'Gatehouse, audit on tmpfs');
  const gw = gate.waves;
  const errors = gw.reduce((n, w) => n + w.errors, 0);
  const rssGrowth = gw.length > 0 ? gw.at(-1)!.rss.after - gw[0]!.rss.after : Number.NaN;
  const audited = auditCounts(root);
  const goals = [
    `added TTFB p50 ≤ 1 ms — ${goal(addedTtfb(gate) <= 1)} (+${fmt(addedTtfb(gate))} ms${shm ? `; +${fmt(addedTtfb(shm))} ms with the audit log on tmpfs` : ''}; +${fmt(addedSlowTtfb(gate))} ms when the provider takes ${opts.slowFirstMs} ms to its first byte)`,
    `added p99 inter-event gap ≤ 1 ms — ${goal(addedGapP99(gate) <= 1)} (${fmt(addedGapP99(gate))} ms)`,
    `${opts.streams} concurrent streams with 0 errors — ${goal(errors === 0)} (${errors} in ${gw.length} wave${gw.length === 1 ? '' : 's'})`,
    `memory flat across waves: RSS after the last wave ${rssGrowth >= 0 ? '+' : ''}${fmt(rssGrowth, 1)} MiB vs after the first`,
  ];
  return [
    '### 6. Model calls (`POST /v1/messages`, `stream: true`, to a provider simulator)',
    '',
    `| path | TTFB p50 ms | TTFB p99 ms | added TTFB p50 ms | TTFB p50 ms, provider ${opts.slowFirstMs} ms to first byte (added) | gap p50 ms | gap p99 ms | added gap p99 ms | event delay p50 ms | event delay p99 ms | what it does |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...rows,
    ...peerRow,
    litellm,
    '',
    `**${opts.streams} streams at once** (${opts.streamEvents} deltas each, ${opts.streamGapMs} ms apart: ${fmt(ideal)} s if nothing waited; ${opts.waves} wave${opts.waves === 1 ? '' : 's'}, one after the other):`,
    '',
    '| path | streams | errors | stream s p50 / p99 | event delay p50 ms | event delay p99 ms | CPU µs/event | RSS MiB before → peak → after, per wave |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
    ...waveRows,
    '',
    `Goals for Gatehouse (issue #13): ${goals.join('; ')}. ` +
      `Its audit log holds ${fmtInt(audited.intents)} \`model.call.intent\` and ${fmtInt(audited.outcomes)} \`model.call\` records for the ${fmtInt(gate.calls)} calls it carried.`,
    '',
    `${opts.rounds} interleaved rounds (order rotated each round); per round and path ${opts.ttfbCalls} sequential streaming calls of ${opts.ttfbEvents} deltas (sent at once) on one keep-alive connection, then one stream of ${fmtInt(opts.gapEvents)} deltas the simulator writes ${opts.gapMs} ms apart (a fixed schedule). ` +
      'TTFB: request sent → first body byte (`message_start`). ' +
      `The ${opts.slowFirstMs} ms column: ${opts.slowCalls} more sequential calls per round and path to the same simulator told to wait ${opts.slowFirstMs} ms before its first byte, as a real provider does (hundreds of ms): the gateway writes the intent record while the request is out, so its fdatasync overlaps the wait; what is added is the gateway's own time and one more process waking from idle (the direct row shows that path's TTFB, the others what they add). ` +
      'Gap: time between two deltas arriving at the client; event delay: arrival minus the simulator\'s send time (stamped into each delta, wall clock, same machine). ' +
      'p50/p99: median over rounds of each round\'s percentile; "added": median over rounds of the same-round difference from direct. ' +
      `The concurrent waves go through the Gatehouse with state on ${fsName(root)}${shmRoot ? '' : ' (no /dev/shm here)'}, spread over ${opts.agents} agents (${Math.ceil(opts.streams / opts.agents)} streams, so ${Math.ceil(opts.streams / opts.agents)} connections, each; one token per agent), under the default per-agent limits (maxConnectionsPerAgent 128): the runtime's \`http\` option is not raised. ` +
      'RSS: VmRSS of the proxy process (for direct: the simulator), sampled every 50 ms; "after" 1 s after the wave ended. CPU µs/event: user+system time of that process during the wave, per delta delivered. ' +
      'The simulator (bench/lib/model-server.ts) is node:http with pre-built events; the client (bench/lib/model-client.ts) is undici with SSE read by hand. ' +
      'Gatehouse\'s provider key comes from an in-memory `SecretStore`; resolver, redaction, policy and audit are the real ones. ' +
      `LiteLLM, the proxy users name, is a Python package: this machine reaches npm and Debian only, not PyPI, so it cannot be installed or run here. ` +
      (peer === 'ran'
        ? `The peer row is Portkey's open-source AI gateway (npm \`@portkey-ai/gateway\` ${PORTKEY_VERSION}, Node + Hono, its own provider code for Anthropic /v1/messages), run as \`start-server.js --headless\` with NODE_ENV=production, pointed at the simulator by \`x-portkey-custom-host\`; it is installed outside the project (\`${PORTKEY_INSTALL}\`), not as a devDependency (95 packages for one bench row).`
        : peer === 'missing'
          ? `The peer would be Portkey's open-source AI gateway from npm; install it with \`${PORTKEY_INSTALL}\` to get its row.`
          : `The npm peer tried is Portkey's open-source AI gateway (\`@portkey-ai/gateway\` ${PORTKEY_VERSION}, the maintained Node LLM proxy on npm; installed outside the project with \`${PORTKEY_INSTALL}\`): on this Node (${process.version}) every proxied call — /v1/messages streamed or not, and /v1/chat/completions — answers 500, its log showing \`TypeError: immutable\` (it appends headers to the Response that fetch() returned, whose headers are immutable); 1.9.8, the only other published version, fails the same way. Other npm gateways were not tried (@maximhq/bifrost: a launcher with no dependencies for a Go binary; @musistudio/claude-code-router: routes Claude Code to other providers).`),
    '',
    machine,
  ].join('\n');
}


function mkPath(name: string, note: string, clients: ModelClient[], pid: number): Path {
  return { name, note, clients, pid, ttfb: { p50: [], p99: [] }, slowTtfb: [], gap: { p50: [], p99: [], delayP50: [], delayP99: [] }, calls: 0, waves: [] };
}
