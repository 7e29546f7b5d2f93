/**
 * Per-call overhead: tools/call latency at concurrency 1 and throughput at
 * 8 and 32, against the same upstream (SDK Streamable HTTP echo server),
 * direct and through Gatehouse, supergateway and mcp-proxy. Every proxy runs
 * in its own process; this process only generates load. Rounds are
 * interleaved (rotated order); medians over rounds, ratios paired per round.
 */
import { closeSync, existsSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GATEHOUSE_ECHO_TOOL } from './lib/gatehouse-config.js';
import { openSession, sequentialLatencies, throughput, type McpSession, type McpTarget } from './lib/mcp-client.js';
import { cpuMs, DIST_BENCH, freePort, ROOT, startProc, waitFor, type Proc } from './lib/procs.js';
import { fmt, fmtInt, goal, machineLine, median, quantile, ratio, rotated } from './lib/stats.js';
import { fsName } from './lib/fs-name.js';

export interface CallsOptions {
  rounds: number;
  warmupCalls: number;
  latencyCalls: number;
  throughputMs: number;
  concurrency: number[];
}

export const CALLS_FULL: CallsOptions = { rounds: 7, warmupCalls: 100, latencyCalls: 400, throughputMs: 1500, concurrency: [8, 32] };
export const CALLS_QUICK: CallsOptions = { rounds: 2, warmupCalls: 30, latencyCalls: 60, throughputMs: 250, concurrency: [8, 32] };

interface Path {
  name: string;
  note: string;
  target: McpTarget;
  tool: string;
  /** Processes whose CPU time is the path's own cost (the upstream's is not counted, except for "direct"). */
  pids: number[];
  sessions: Map<number, McpSession>;
  lat: { p50: number[]; p99: number[] };
  tput: Map<number, number[]>;
  /** CPU of the path's own processes, and of the upstream in the same windows; `ratios`: the quotient per round. */
  cpu: { ms: number; upstreamMs: number; calls: number; ratios: number[] };
}

const SUPERGATEWAY = join(ROOT, 'node_modules', 'supergateway', 'dist', 'index.js');

/** Median fdatasync of a small append in `dir` (what a durable audit record waits for at least once). */
function fdatasyncMs(dir: string): number {
  const file = join(dir, 'fdatasync-probe');
  const fd = openSync(file, 'a');
  const xs: number[] = [];
  try {
    for (let i = 0; i < 40; i++) {
      writeSync(fd, `${'x'.repeat(300)}\n`);
      const t0 = performance.now();
      fdatasyncSync(fd);
      xs.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return median(xs);
}

async function reachable(url: string): Promise<boolean> {
  const s = await openSession({ url }, 1);
  await s.close();
  return true;
}

export interface CallsResult {
  markdown: string;
  goals: { pinningWithinNoise: boolean; telemetryWithin5: boolean; addedP50: boolean; throughput8: boolean; fasterThanPeers: boolean };
}

export async function benchCalls(opts: CallsOptions, log: (s: string) => void): Promise<CallsResult> {
  const machine = machineLine();
  const procs: Proc[] = [];
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-bench-calls-'));
  const unpinnedRoot = mkdtempSync(join(tmpdir(), 'gatehouse-bench-calls-unpinned-'));
  // The same gateway with its state (audit log) on tmpfs: fdatasync costs nothing there, so the
  // difference between the two Gatehouse rows is the disk, not the software.
  const shmRoot = existsSync('/dev/shm') ? mkdtempSync(join('/dev/shm', 'gatehouse-bench-calls-')) : undefined;
  const telemetryRoot = mkdtempSync(join(tmpdir(), 'gatehouse-bench-calls-telemetry-'));
  let scraper: NodeJS.Timeout | undefined;
  try {
    const syncDisk = fdatasyncMs(root);
    const upstream = await startProc(process.execPath, [join(DIST_BENCH, 'procs', 'echo-upstream.js'), '0'], /LISTENING (\d+)/);
    procs.push(upstream);
    const upstreamUrl = `http://127.0.0.1:${upstream.match[1]}/mcp`;
    log(`upstream ${upstreamUrl}`);

    const gh = await startProc(process.execPath, [join(DIST_BENCH, 'procs', 'gatehouse.js'), root, upstreamUrl], /^(\{.*\})$/m);
    procs.push(gh);
    const ghInfo = JSON.parse(gh.match[1] ?? '{}') as { url: string; token: string };
    const ghOff = await startProc(process.execPath, [join(DIST_BENCH, 'procs', 'gatehouse.js'), unpinnedRoot, upstreamUrl, 'unpinned'], /^(\{.*\})$/m);
    procs.push(ghOff);
    const ghOffInfo = JSON.parse(ghOff.match[1] ?? '{}') as { url: string; token: string };
    const ghShm = shmRoot ? await startProc(process.execPath, [join(DIST_BENCH, 'procs', 'gatehouse.js'), shmRoot, upstreamUrl], /^(\{.*\})$/m) : undefined;
    if (ghShm) procs.push(ghShm);
    const ghShmInfo = ghShm ? (JSON.parse(ghShm.match[1] ?? '{}') as { url: string; token: string }) : undefined;
    // Traces to a collector that takes everything, /metrics scraped every second (Prometheus' default is 15 s or more).
    const sink = await startProc(process.execPath, [join(DIST_BENCH, 'procs', 'otlp-sink.js')], /LISTENING (\d+)/);
    procs.push(sink);
    const sinkUrl = `http://127.0.0.1:${sink.match[1]}`;
    const ghTel = await startProc(process.execPath, [join(DIST_BENCH, 'procs', 'gatehouse.js'), telemetryRoot, upstreamUrl, 'telemetry', sinkUrl], /^(\{.*\})$/m);
    procs.push(ghTel);
    const ghTelInfo = JSON.parse(ghTel.match[1] ?? '{}') as { url: string; token: string; metricsUrl: string };
    const scrapes = { ok: 0, failed: 0, bytes: 0 };
    scraper = setInterval(() => {
      fetch(ghTelInfo.metricsUrl).then(
        async (r) => {
          const text = await r.text();
          if (r.ok) {
            scrapes.ok++;
            scrapes.bytes = text.length;
          } else scrapes.failed++;
        },
        () => scrapes.failed++,
      );
    }, 1000);

    // supergateway cannot forward HTTP to HTTP: its documented way to put an HTTP
    // endpoint in front of a remote server is an HTTP→stdio child under a stdio→HTTP front.
    const sgPort = await freePort();
    const sg = await startProc(
      process.execPath,
      [SUPERGATEWAY, '--stdio', `${process.execPath} ${SUPERGATEWAY} --streamableHttp ${upstreamUrl} --logLevel none`, '--outputTransport', 'streamableHttp', '--stateful', '--port', String(sgPort), '--logLevel', 'none'],
      undefined,
    );
    procs.push(sg);
    const sgUrl = `http://127.0.0.1:${sgPort}/mcp`;
    await waitFor(() => reachable(sgUrl), 'supergateway to answer initialize', 60_000);

    const mp = await startProc(process.execPath, [join(DIST_BENCH, 'procs', 'mcp-proxy.js'), upstreamUrl], /LISTENING (\d+)/);
    procs.push(mp);

    const paths: Path[] = [
      mkPath('direct', 'SDK echo server, no proxy', { url: upstreamUrl }, 'echo', [upstream.child.pid ?? 0]),
      mkPath('Gatehouse', `policy + durable audit (state on ${fsName(root)}) + secret header + redaction`, { url: ghInfo.url, headers: { authorization: `Bearer ${ghInfo.token}` } }, GATEHOUSE_ECHO_TOOL, [gh.child.pid ?? 0]),
      mkPath(UNPINNED, 'the same with `pin: off` and `results: { invisible: off }` (issue #16 off)', { url: ghOffInfo.url, headers: { authorization: `Bearer ${ghOffInfo.token}` } }, GATEHOUSE_ECHO_TOOL, [ghOff.child.pid ?? 0]),
      ...(ghShm && ghShmInfo
        ? [mkPath('Gatehouse, audit on tmpfs', 'the same, state in /dev/shm (fdatasync ≈ 0)', { url: ghShmInfo.url, headers: { authorization: `Bearer ${ghShmInfo.token}` } }, GATEHOUSE_ECHO_TOOL, [ghShm.child.pid ?? 0])]
        : []),
      mkPath(TELEMETRY, 'the same, every call traced (OTLP/HTTP to a local collector that takes everything) and `/metrics` scraped each second', { url: ghTelInfo.url, headers: { authorization: `Bearer ${ghTelInfo.token}` } }, GATEHOUSE_ECHO_TOOL, [ghTel.child.pid ?? 0]),
      mkPath(MODERN_ROW, 'the first row\'s gateway, its agent speaking MCP 2026-07-28 (no session; the upstream still 2025-11-25)', { url: ghInfo.url, headers: { authorization: `Bearer ${ghInfo.token}` }, protocol: '2026-07-28' }, GATEHOUSE_ECHO_TOOL, [gh.child.pid ?? 0]),
      mkPath('supergateway', 'forward only (stdio→HTTP front + HTTP→stdio child)', { url: sgUrl }, 'echo', [sg.child.pid ?? 0]),
      mkPath('mcp-proxy', 'forward only (startHTTPServer + proxyServer, no event store)', { url: `http://127.0.0.1:${mp.match[1]}/mcp` }, 'echo', [mp.child.pid ?? 0]),
    ];

    const upstreamPid = upstream.child.pid ?? 0;
    const maxC = Math.max(1, ...opts.concurrency);
    for (const p of paths) {
      for (const c of opts.concurrency) p.tput.set(c, []);
      for (const c of [1, ...opts.concurrency]) p.sessions.set(c, await openSession(p.target, c));
      // Warm-up: JIT, connection pools, caches.
      await sequentialLatencies(p.sessions.get(1)!, p.tool, opts.warmupCalls);
      for (const c of opts.concurrency) await throughput(p.sessions.get(c)!, p.tool, c, opts.warmupCalls * 2);
    }
    log(`paths ready (${paths.map((p) => p.name).join(', ')}); ${opts.rounds} rounds, up to ${maxC} in flight`);

    for (let r = 0; r < opts.rounds; r++) {
      for (const p of rotated(paths, r)) {
        const xs = await sequentialLatencies(p.sessions.get(1)!, p.tool, opts.latencyCalls);
        p.lat.p50.push(quantile(xs, 0.5));
        p.lat.p99.push(quantile(xs, 0.99));
      }
      for (const c of opts.concurrency) {
        for (const p of rotated(paths, r)) {
          const before = p.pids.reduce((s, pid) => s + cpuMs(pid), 0);
          const upBefore = cpuMs(upstreamPid);
          const t0 = performance.now();
          const n = await throughput(p.sessions.get(c)!, p.tool, c, opts.throughputMs);
          if (c === opts.concurrency[0]) {
            const own = p.pids.reduce((s, pid) => s + cpuMs(pid), 0) - before;
            const up = cpuMs(upstreamPid) - upBefore;
            p.cpu.ms += own;
            p.cpu.upstreamMs += up;
            p.cpu.calls += (n * (performance.now() - t0)) / 1000;
            p.cpu.ratios.push(own / Math.max(1e-9, up));
          }
          p.tput.get(c)!.push(n);
        }
      }
      const d = paths[0]!;
      log(`round ${r + 1}/${opts.rounds}: ` + paths.map((p) => `${p.name} p50 ${fmt(p.lat.p50.at(-1)!)} ms, c=${opts.concurrency[0]} ${fmtInt(p.tput.get(opts.concurrency[0]!)!.at(-1)!)}/s`).join('; ') + ` (direct ${fmt(d.lat.p50.at(-1)!)})`);
    }
    for (const p of paths) for (const s of p.sessions.values()) await s.close();

    const direct = paths[0]!;
    const paired = (p: Path, f: (p: Path, i: number) => number) => median(p.lat.p50.map((_, i) => f(p, i)));
    const addedP50 = (p: Path) => paired(p, (q, i) => q.lat.p50[i]! - direct.lat.p50[i]!);
    const tputRatio = (p: Path, c: number) => paired(p, (q, i) => q.tput.get(c)![i]! / direct.tput.get(c)![i]!);
    const c8 = opts.concurrency[0]!;
    const rows = paths.map((p) => {
      const cells = [
        `**${p.name}**`,
        fmt(median(p.lat.p50)),
        fmt(median(p.lat.p99)),
        p === direct ? '–' : `+${fmt(addedP50(p))}`,
        ...opts.concurrency.flatMap((c) => [fmtInt(median(p.tput.get(c)!)), p === direct ? '1.00×' : `${tputRatio(p, c).toFixed(2)}×`]),
        fmtInt((p.cpu.ms * 1000) / Math.max(1, p.cpu.calls)),
        ratio(p.cpu.ms, p.cpu.upstreamMs),
        p.note,
      ];
      return `| ${cells.join(' | ')} |`;
    });
    const gate = paths[1]!;
    const peers = paths.filter((p) => p.name === 'supergateway' || p.name === 'mcp-proxy');
    const shm = paths.find((p) => p.name === 'Gatehouse, audit on tmpfs');
    const pinning = pinningCost(gate, paths.find((p) => p.name === UNPINNED)!);
    clearInterval(scraper);
    const sinkSeen = (await (await fetch(sinkUrl)).json()) as { requests: number; bytes: number };
    const telemetry = telemetryCost(gate, paths.find((p) => p.name === TELEMETRY)!);
    const modernRow = paths.find((p) => p.name === MODERN_ROW)!;
    // Issue #20's speed goal: a 2026-07-28 call costs the gateway no more CPU than a 2025-11-25 one (CPU ÷ upstream's, same rounds).
    const eraCpu = median(gate.cpu.ratios.map((x, i) => modernRow.cpu.ratios[i]! - x));
    const goals = {
      pinningWithinNoise: pinning.withinNoise,
      telemetryWithin5: telemetry.within5,
      addedP50: addedP50(gate) <= 1,
      throughput8: tputRatio(gate, c8) >= 0.6,
      fasterThanPeers: peers.every((q) => addedP50(gate) < addedP50(q) && opts.concurrency.every((c) => tputRatio(gate, c) > tputRatio(q, c))),
    };
    const markdown = [
      '### 1. Per-call overhead (`tools/call` to an SDK Streamable HTTP echo server)',
      '',
      `| path | p50 ms (c=1) | p99 ms (c=1) | added p50 ms | ${opts.concurrency.map((c) => `calls/s c=${c} | vs direct`).join(' | ')} | CPU µs/call (c=${c8}) | CPU ÷ upstream's | what it does |`,
      `|---|---:|---:|---:|${opts.concurrency.map(() => '---:|---:').join('|')}|---:|---:|---|`,
      ...rows,
      '',
      `Goals for Gatehouse: added p50 ≤ 1 ms — ${goal(goals.addedP50)} (+${fmt(addedP50(gate))} ms${shm ? `; +${fmt(addedP50(shm))} ms with the audit log on tmpfs` : ''}); c=${c8} throughput ≥ 0.60 of direct — ${goal(goals.throughput8)} (${ratio(tputRatio(gate, c8), 1)}); faster than both peers (added p50 and every throughput ratio) — ${goal(goals.fasterThanPeers)}. ` +
        `Pinning and result screening (issue #16) cost per call nothing the rounds can tell from noise — ${goal(goals.pinningWithinNoise)}: ${pinning.text}. ` +
        `Tracing and metrics on (issue #19): per-call CPU within 5% of the default row's — ${goal(goals.telemetryWithin5)}: ${telemetry.text}; ` +
        `the collector took ${fmtInt(sinkSeen.requests)} OTLP requests (${fmt(sinkSeen.bytes / 1048576)} MiB), ${fmtInt(scrapes.ok)} scrapes of ${fmtInt(scrapes.bytes)} bytes answered (${scrapes.failed} failed). ` +
        'Metrics are counted on every row (plain numbers per call; the Prometheus text is made only when scraped): "off" here is tracing off and nobody scraping. ' +
        `A 2026-07-28 call against a 2025-11-25 one on the same gateway: CPU ÷ upstream's ${eraCpu >= 0 ? '+' : '−'}${Math.abs(eraCpu).toFixed(2)} (same-round median; no more CPU — ${goal(eraCpu <= iqr(gate.cpu.ratios))}, within the 2025 row's own spread, IQR ${iqr(gate.cpu.ratios).toFixed(2)}). ` +
        `One fdatasync of a small append in the bench's temp directory (${fsName(root)}) takes ${fmt(syncDisk)} ms (median of 40, this run): a durable audit record is on disk before the answer, so at c=1 every call waits for at least one.`,
      '',
      `${opts.rounds} interleaved rounds (order rotated each round); per round ${opts.latencyCalls} sequential calls at c=1 and ${opts.throughputMs} ms of closed-loop load at each concurrency, all on one MCP session per path (c = calls in flight on c keep-alive connections). ` +
        'p50/p99: median over rounds of each round\'s percentile; "added" and "vs direct": median over rounds of the same-round difference or ratio. ' +
        'CPU µs/call: user+system time of the path\'s own processes (for direct: the upstream; otherwise the proxy, not the upstream) during the c=' + c8 + ' runs, per call; "CPU ÷ upstream\'s" divides it by the upstream\'s CPU in the same windows, which cancels most of the machine\'s contention (the same code costs 2-3× more CPU per call when the cores are oversubscribed). ' +
        'Load comes from a lean client in the bench process (pre-serialised JSON over undici, SSE parsed by hand), not the SDK Client. ' +
        'Gatehouse runs in its own process as `startGateway` does for `gatehouse serve`: bearer JWT per request, a 4-rule policy with a rate limit, durable hash-chained audit (fdatasync before the answer), an `X-Bench-Key: ${secret:…}` header rendered per request, redaction of every result. ' +
        'Its secret comes from an in-memory `SecretStore` (the OS keychain needs a D-Bus Secret Service, which this machine does not run); resolver, cache and redaction are the real ones.',
      '',
      machine,
    ].join('\n');
    return { markdown, goals };
  } finally {
    for (const p of procs.reverse()) await p.stop();
    rmSync(root, { recursive: true, force: true });
    clearInterval(scraper);
    rmSync(unpinnedRoot, { recursive: true, force: true });
    rmSync(telemetryRoot, { recursive: true, force: true });
    if (shmRoot) rmSync(shmRoot, { recursive: true, force: true });
  }
}


const UNPINNED = 'Gatehouse, pinning and screening off';
const TELEMETRY = 'Gatehouse, tracing + metrics scraped';

/**
 * What tracing and a scraper add per call: the same-round ratio of CPU ÷
 * upstream's (which cancels the machine's contention) and the same-round
 * difference in c=1 p50, against the default gateway.
 */
function telemetryCost(off: Path, on: Path): { within5: boolean; text: string } {
  const rounds = off.cpu.ratios.map((_, i) => i);
  const cpu = median(rounds.map((i) => on.cpu.ratios[i]! / off.cpu.ratios[i]!)) - 1;
  const dP50 = median(rounds.map((i) => on.lat.p50[i]! - off.lat.p50[i]!));
  const pct = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)}%`;
  return {
    within5: cpu <= 0.05,
    text: `CPU ÷ upstream's ${pct(cpu)} (same-round median; the default row's own spread between rounds, IQR, is ${pct(iqr(off.cpu.ratios) / median(off.cpu.ratios))}), p50 at c=1 ${dP50 >= 0 ? '+' : '−'}${Math.abs(dP50).toFixed(3)} ms`,
  };
}
const MODERN_ROW = 'Gatehouse, 2026-07-28 agent';

/** Interquartile range: the middle half of a path's own round-to-round spread. */
function iqr(xs: number[]): number {
  return quantile(xs, 0.75) - quantile(xs, 0.25);
}

/**
 * What pinning and result screening add per call: the same-round difference
 * between the default gateway and one with both off, in c=1 p50 and in CPU ÷
 * upstream's. "Within noise" when each median difference is smaller than the
 * default gateway's own spread between rounds (its IQR) for that measure.
 */
function pinningCost(on: Path, off: Path): { withinNoise: boolean; text: string } {
  const rounds = on.lat.p50.map((_, i) => i);
  const dP50 = median(rounds.map((i) => on.lat.p50[i]! - off.lat.p50[i]!));
  const dCpu = median(rounds.map((i) => on.cpu.ratios[i]! - off.cpu.ratios[i]!));
  const spreadP50 = iqr(on.lat.p50);
  const spreadCpu = iqr(on.cpu.ratios);
  const signed = (x: number, digits: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(digits)}`;
  return {
    withinNoise: Math.abs(dP50) <= spreadP50 && Math.abs(dCpu) <= spreadCpu,
    text:
      `p50 at c=1 ${signed(dP50, 3)} ms against both off (same-round median; the default gateway's own spread between rounds, IQR, ${fmt(spreadP50)} ms), ` +
      `CPU ÷ upstream's ${signed(dCpu, 2)} (IQR ${spreadCpu.toFixed(2)})`,
  };
}

function mkPath(name: string, note: string, target: McpTarget, tool: string, pids: number[]): Path {
  return { name, note, target, tool, pids, sessions: new Map(), lat: { p50: [], p99: [] }, tput: new Map(), cpu: { ms: 0, upstreamMs: 0, calls: 0, ratios: [] } };
}
