/**
 * Per-call overhead: tools/call latency at concurrency 1 and throughput at
 * 8 and 32, against the same upstream (SDK Streamable HTTP echo server),
 * direct and through Gatehouse, supergateway and mcp-proxy, and through
 * Gatehouse fronting an stdio echo server. Every proxy runs in its own
 * process; this process only generates load. Rounds are interleaved (rotated
 * order); medians over rounds, ratios paired per round. Then each Gatehouse
 * gateway (HTTP and stdio upstream) once more under `node --cpu-prof`: where
 * its time goes, against issue #21's CPU budget.
 */
import { closeSync, existsSync, fdatasyncSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GATEHOUSE_ECHO_TOOL } from './lib/gatehouse-config.js';
import { openSession, sequentialLatencies, throughput, type McpSession, type McpTarget } from './lib/mcp-client.js';
import { cpuMs, DIST_BENCH, freePort, ROOT, startProc, waitFor, type Proc } from './lib/procs.js';
import { breakdown, breakdownTable, profileIn, type Breakdown } from './lib/profile.js';
import { fmt, fmtInt, goal, machineLine, median, quantile, ratio, rotated } from './lib/stats.js';
import { fsName } from './lib/fs-name.js';

export interface CallsOptions {
  rounds: number;
  warmupCalls: number;
  latencyCalls: number;
  throughputMs: number;
  concurrency: number[];
  /** The profiled phase per Gatehouse gateway: calls before the profile window, calls in it, at `profileConcurrency`. */
  profileWarmupCalls: number;
  profileCalls: number;
  profileConcurrency: number;
}

export const CALLS_FULL: CallsOptions = { rounds: 7, warmupCalls: 100, latencyCalls: 400, throughputMs: 1500, concurrency: [8, 32], profileWarmupCalls: 2000, profileCalls: 4000, profileConcurrency: 8 };
export const CALLS_QUICK: CallsOptions = { rounds: 2, warmupCalls: 30, latencyCalls: 60, throughputMs: 250, concurrency: [8, 32], profileWarmupCalls: 300, profileCalls: 600, profileConcurrency: 8 };

/** CPU milliseconds so far of a path's own processes and of the upstream it calls. */
type CpuMeter = () => { own: number; upstream: number };

interface Path {
  name: string;
  note: string;
  target: McpTarget;
  tool: string;
  /** The path's own CPU (the upstream's not counted, except for "direct") and its upstream's. */
  meter: CpuMeter;
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
  goals: { pinningWithinNoise: boolean; telemetryWithin5: boolean; fasterThanPeers: boolean; http: KindGoals; stdio: KindGoals };
}

/** Issue #21's per-call goals for Gatehouse in front of one upstream kind. */
export interface KindGoals {
  /** Gateway CPU per call ≤ 1.5× the upstream's. */
  cpu: boolean;
  /** Every concurrency's throughput ≥ 0.75× direct. */
  throughput: boolean;
  /** Added p50 at c=1 ≤ 0.5 ms. */
  addedP50: boolean;
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
  const stdioRoot = mkdtempSync(join(tmpdir(), 'gatehouse-bench-calls-stdio-'));
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
    const { proc: ghStdio, info: ghStdioInfo, upstream: stdioUpstream } = await startStdioGateway(stdioRoot, log);
    procs.push(ghStdio);
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

    const upstreamPid = upstream.child.pid ?? 0;
    const http = (p: Proc) => httpMeter([p.child.pid ?? 0], upstreamPid);
    const paths: Path[] = [
      mkPath('direct', 'SDK echo server, no proxy', { url: upstreamUrl }, 'echo', http(upstream)),
      mkPath('Gatehouse', `policy + durable audit (state on ${fsName(root)}) + secret header + redaction`, { url: ghInfo.url, headers: { authorization: `Bearer ${ghInfo.token}` } }, GATEHOUSE_ECHO_TOOL, http(gh)),
      mkPath(
        STDIO_ROW,
        `the same in front of an SDK \`McpServer\` echo over stdio, its child, ${stdioUpstream === 'stdio:confined' ? 'confined (gatehouse-sandbox, the default)' : '`sandbox: off` (confinement did not start here)'}; the secret in the server's env`,
        { url: ghStdioInfo.url, headers: { authorization: `Bearer ${ghStdioInfo.token}` } },
        GATEHOUSE_ECHO_TOOL,
        childUpstreamMeter(ghStdio.child.pid ?? 0),
      ),
      mkPath(UNPINNED, 'the same with `pin: off` and `results: { invisible: off }` (issue #16 off)', { url: ghOffInfo.url, headers: { authorization: `Bearer ${ghOffInfo.token}` } }, GATEHOUSE_ECHO_TOOL, http(ghOff)),
      ...(ghShm && ghShmInfo
        ? [mkPath('Gatehouse, audit on tmpfs', 'the same, state in /dev/shm (fdatasync ≈ 0)', { url: ghShmInfo.url, headers: { authorization: `Bearer ${ghShmInfo.token}` } }, GATEHOUSE_ECHO_TOOL, http(ghShm))]
        : []),
      mkPath(TELEMETRY, 'the same, every call traced (OTLP/HTTP to a local collector that takes everything) and `/metrics` scraped each second', { url: ghTelInfo.url, headers: { authorization: `Bearer ${ghTelInfo.token}` } }, GATEHOUSE_ECHO_TOOL, http(ghTel)),
      mkPath(MODERN_ROW, 'the first row\'s gateway, its agent speaking MCP 2026-07-28 (no session; the upstream still 2025-11-25)', { url: ghInfo.url, headers: { authorization: `Bearer ${ghInfo.token}` }, protocol: '2026-07-28' }, GATEHOUSE_ECHO_TOOL, http(gh)),
      mkPath('supergateway', 'forward only (stdio→HTTP front + HTTP→stdio child)', { url: sgUrl }, 'echo', http(sg)),
      mkPath('mcp-proxy', 'forward only (startHTTPServer + proxyServer, no event store)', { url: `http://127.0.0.1:${mp.match[1]}/mcp` }, 'echo', http(mp)),
    ];

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
          const before = p.meter();
          const t0 = performance.now();
          const n = await throughput(p.sessions.get(c)!, p.tool, c, opts.throughputMs);
          if (c === opts.concurrency[0]) {
            const after = p.meter();
            const own = after.own - before.own;
            const up = after.upstream - before.upstream;
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

    // Where the time goes: each Gatehouse gateway again, alone, under the profiler.
    const profiled: Profiled[] = [];
    for (const [label, arg, meterOf] of [
      [HTTP_LABEL, upstreamUrl, (pid: number) => httpMeter([pid], upstreamPid)],
      [STDIO_LABEL, stdioUpstream, childUpstreamMeter],
    ] as const) {
      profiled.push(await profileGateway(label, arg, meterOf, opts));
      log(`profiled Gatehouse, ${label}: ${fmtInt(profiled.at(-1)!.ownUs)} µs CPU per call (${fmtInt(profiled.at(-1)!.table.busyUs)} sampled), upstream ${fmtInt(profiled.at(-1)!.upstreamUs)}`);
    }

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
    const gate = paths.find((p) => p.name === 'Gatehouse')!;
    const stdio = paths.find((p) => p.name === STDIO_ROW)!;
    const peers = paths.filter((p) => p.name === 'supergateway' || p.name === 'mcp-proxy');
    const shm = paths.find((p) => p.name === 'Gatehouse, audit on tmpfs');
    const pinning = pinningCost(gate, paths.find((p) => p.name === UNPINNED)!);
    clearInterval(scraper);
    const sinkSeen = (await (await fetch(sinkUrl)).json()) as { requests: number; bytes: number };
    const telemetry = telemetryCost(gate, paths.find((p) => p.name === TELEMETRY)!);
    const modernRow = paths.find((p) => p.name === MODERN_ROW)!;
    // Issue #20's speed goal: a 2026-07-28 call costs the gateway no more CPU than a 2025-11-25 one (CPU ÷ upstream's, same rounds).
    const eraCpu = median(gate.cpu.ratios.map((x, i) => modernRow.cpu.ratios[i]! - x));
    const kindGoals = (p: Path): KindGoals => ({
      cpu: p.cpu.ms / Math.max(1e-9, p.cpu.upstreamMs) <= GOAL.cpuRatio,
      throughput: opts.concurrency.every((c) => tputRatio(p, c) >= GOAL.throughput),
      addedP50: addedP50(p) <= GOAL.addedP50Ms,
    });
    const goals = {
      pinningWithinNoise: pinning.withinNoise,
      telemetryWithin5: telemetry.within5,
      fasterThanPeers: peers.every((q) => addedP50(gate) < addedP50(q) && opts.concurrency.every((c) => tputRatio(gate, c) > tputRatio(q, c))),
      http: kindGoals(gate),
      stdio: kindGoals(stdio),
    };
    const kindLine = (label: string, p: Path, g: KindGoals) =>
      `${label}: CPU ${ratio(p.cpu.ms, p.cpu.upstreamMs)} the upstream's (≤ ${GOAL.cpuRatio}×) — ${goal(g.cpu)}; ` +
      `throughput ${opts.concurrency.map((c) => `c=${c} ${ratio(tputRatio(p, c), 1)}`).join(', ')} of direct (≥ ${GOAL.throughput}× each) — ${goal(g.throughput)}; ` +
      `added p50 +${fmt(addedP50(p))} ms (≤ ${GOAL.addedP50Ms} ms) — ${goal(g.addedP50)}`;
    const markdown = [
      '### 1. Per-call overhead (`tools/call` to an SDK echo server over Streamable HTTP or stdio)',
      '',
      `| path | p50 ms (c=1) | p99 ms (c=1) | added p50 ms | ${opts.concurrency.map((c) => `calls/s c=${c} | vs direct`).join(' | ')} | CPU µs/call (c=${c8}) | CPU ÷ upstream's | what it does |`,
      `|---|---:|---:|---:|${opts.concurrency.map(() => '---:|---:').join('|')}|---:|---:|---|`,
      ...rows,
      '',
      `Goals for Gatehouse (issue #21, policy, durable audit, secret injection and redaction on). ${kindLine(HTTP_LABEL, gate, goals.http)}${shm ? ` (+${fmt(addedP50(shm))} ms with the audit log on tmpfs)` : ''}. ` +
        `${kindLine(STDIO_LABEL, stdio, goals.stdio)}. ` +
        `Faster than both peers (HTTP upstream; added p50 and every throughput ratio) — ${goal(goals.fasterThanPeers)}. ` +
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
        'Its secret comes from an in-memory `SecretStore` (the OS keychain needs a D-Bus Secret Service, which this machine does not run); resolver, cache and redaction are the real ones. ' +
        `The stdio row's upstream is the gateway's own child (\`kind: stdio\`, ${stdioUpstream === 'stdio:confined' ? 'confined under gatehouse-sandbox as by default' : 'with `sandbox: off`: the confined one did not answer here'}, the secret rendered into its env at start): its CPU is that of every process below the gateway (the launcher's processes and the server), the gateway's own excludes them; its "vs direct" is against the HTTP echo server of the first row.`,
      '',
      whereTimeGoes(profiled, opts, {
        fdatasyncMs: syncDisk,
        addedP50Ms: { [HTTP_LABEL]: addedP50(gate), [STDIO_LABEL]: addedP50(stdio) },
        ...(shm ? { tmpfsAddedP50Ms: addedP50(shm) } : {}),
      }),
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
    rmSync(stdioRoot, { recursive: true, force: true });
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

function mkPath(name: string, note: string, target: McpTarget, tool: string, meter: CpuMeter): Path {
  return { name, note, target, tool, meter, sessions: new Map(), lat: { p50: [], p99: [] }, tput: new Map(), cpu: { ms: 0, upstreamMs: 0, calls: 0, ratios: [] } };
}

const STDIO_ROW = 'Gatehouse, stdio upstream';

/**
 * The gateway in front of the stdio echo server, confined as by default; with
 * `sandbox: off` where the confined server does not answer (no user namespaces,
 * launcher not built), so the row is there and its note says which ran.
 */
async function startStdioGateway(root: string, log: (s: string) => void): Promise<{ proc: Proc; info: { url: string; token: string }; upstream: 'stdio:confined' | 'stdio:off' }> {
  for (const upstream of ['stdio:confined', 'stdio:off'] as const) {
    const dir = join(root, upstream.slice('stdio:'.length));
    const proc = await startProc(process.execPath, [join(DIST_BENCH, 'procs', 'gatehouse.js'), dir, upstream], /^(\{.*\})$/m);
    const info = JSON.parse(proc.match[1] ?? '{}') as { url: string; token: string };
    const session = await openSession({ url: info.url, headers: { authorization: `Bearer ${info.token}` } }, 1);
    try {
      await session.call(GATEHOUSE_ECHO_TOOL, { text: 'probe' });
      return { proc, info, upstream };
    } catch (e) {
      if (upstream === 'stdio:off') throw e;
      log(`stdio upstream confined did not answer (${e instanceof Error ? e.message : String(e)}); running it with sandbox: off`);
      await proc.stop();
    } finally {
      await session.close();
    }
  }
  throw new Error('unreachable');
}
/** Issue #21's per-call goals, for either upstream kind. */
const GOAL = { cpuRatio: 1.5, throughput: 0.75, addedP50Ms: 0.5 };

/** A proxy's processes against the HTTP upstream's (a process of its own). */
function httpMeter(pids: number[], upstreamPid: number): CpuMeter {
  return () => ({ own: pids.reduce((s, pid) => s + cpuMs(pid), 0), upstream: cpuMs(upstreamPid) });
}

/** A gateway whose upstream is its child: every process below it is the upstream (cpuMs counts descendants, so they come off the gateway's). */
function childUpstreamMeter(pid: number): CpuMeter {
  return () => {
    const all = cpuMs(pid);
    const upstream = childrenOf(pid).reduce((s, c) => s + cpuMs(c), 0);
    return { own: all - upstream, upstream };
  };
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter((x) => x !== '').map(Number);
  } catch {
    return [];
  }
}

/** One gateway's profiled phase. */
interface Profiled {
  label: string;
  calls: number;
  /** Process CPU per call in the profile window (µs): the gateway's own, and its upstream's. */
  ownUs: number;
  upstreamUs: number;
  table: Breakdown;
  /** Set when the window could not be cut out of the profile (the whole run, start-up included, is summed). */
  wholeRun?: true;
}

/**
 * A fresh gateway under `node --cpu-prof`: warmed up, then `profileCalls`
 * calls at `profileConcurrency` inside a window whose process CPU is read
 * from /proc; SIGTERM writes the profile, which is cut to that window.
 */
async function profileGateway(label: string, upstreamArg: string, meterOf: (gatewayPid: number) => CpuMeter, opts: CallsOptions): Promise<Profiled> {
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-bench-calls-prof-'));
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-calls-cpuprof-'));
  try {
    const gw = await startProc(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${PROFILE_INTERVAL_US}`, join(DIST_BENCH, 'procs', 'gatehouse.js'), root, upstreamArg], /^(\{.*\})$/m);
    const info = JSON.parse(gw.match[1] ?? '{}') as { url: string; token: string };
    const meter = meterOf(gw.child.pid ?? 0);
    const session = await openSession({ url: info.url, headers: { authorization: `Bearer ${info.token}` } }, opts.profileConcurrency);
    let window: { fromUs: number; toUs: number; own: number; upstream: number };
    try {
      await callsAt(session, GATEHOUSE_ECHO_TOOL, opts.profileConcurrency, opts.profileWarmupCalls);
      const before = meter();
      const fromUs = monotonicUs();
      await callsAt(session, GATEHOUSE_ECHO_TOOL, opts.profileConcurrency, opts.profileCalls);
      const toUs = monotonicUs();
      const after = meter();
      window = { fromUs, toUs, own: after.own - before.own, upstream: after.upstream - before.upstream };
    } finally {
      await session.close();
      await gw.stop();
    }
    await waitFor(async () => readdirSync(dir).some((f) => f.endsWith('.cpuprofile')), `the profile of Gatehouse, ${label}`);
    const file = profileIn(dir);
    const cut = profileWindow(file, window.fromUs, window.toUs);
    return {
      label,
      calls: opts.profileCalls,
      ownUs: (window.own * 1000) / opts.profileCalls,
      upstreamUs: (window.upstream * 1000) / opts.profileCalls,
      table: breakdown(cut ?? file, opts.profileCalls, readableRow),
      ...(cut === undefined ? { wholeRun: true as const } : {}),
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

/** V8's default is 1,000 µs; a call takes about that much CPU, so sample finer. */
const PROFILE_INTERVAL_US = 250;

/** Now on CLOCK_MONOTONIC in µs: the clock of V8's profile timestamps on Linux (base::TimeTicks), as of process.hrtime. */
function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Exactly `n` calls with `concurrency` in flight. */
async function callsAt(s: McpSession, tool: string, concurrency: number, n: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await s.call(tool, { text: `profile ${next++}` });
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/**
 * The profile's samples taken between two instants, written beside it (not
 * as .cpuprofile); undefined when the window does not lie inside the profile
 * (another clock: then the caller sums the whole run).
 */
function profileWindow(file: string, fromUs: number, toUs: number): string | undefined {
  const p = JSON.parse(readFileSync(file, 'utf8')) as { startTime: number; endTime: number; samples: number[]; timeDeltas: number[] };
  if (fromUs < p.startTime || toUs > p.endTime) return undefined;
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (t < fromUs || t > toUs) continue;
    samples.push(p.samples[i]!);
    timeDeltas.push(p.timeDeltas[i] ?? 0);
  }
  const out = `${file}.window.json`;
  writeFileSync(out, JSON.stringify({ ...p, startTime: fromUs, endTime: toUs, samples, timeDeltas }));
  return out;
}

const SDK_V1 = 'MCP SDK v1 (server + client)';
const SDK_V2 = 'MCP SDK v2';
const ZOD = 'zod';
const WEB_STREAMS = 'Web streams (Node)';
const WEB_FETCH_OBJECTS = "Web Request / Response / Headers (Node's built-in undici)";
const UPSTREAM_HTTP = 'fetch / undici (to the upstream)';

/** The rows a lean `tools/call` path (no SDK server/client objects, no per-message zod, no Web objects or streams, a raw pooled request to the upstream) would not run. */
const LEAN_PATH_REMOVES = [SDK_V1, SDK_V2, ZOD, WEB_STREAMS, WEB_FETCH_OBJECTS, UPSTREAM_HTTP];

/** Profile buckets (lib/profile.ts bucketOf), first match wins; the rest keep their bucket's name. */
const ROWS: Array<[RegExp, string]> = [
  [/^pkg @modelcontextprotocol\/sdk$/, SDK_V1],
  [/^pkg @modelcontextprotocol\//, SDK_V2],
  [/^pkg zod$/, ZOD],
  [/^node (webstreams\/|worker\/js_transferable$)|^native JSTransferable$/, WEB_STREAMS],
  [/^node deps\/undici\//, WEB_FETCH_OBJECTS],
  // npm undici and its llhttp (WebAssembly), the SSE parser of upstream answers.
  [/^pkg (undici|eventsource-parser)$|^wasm:/, UPSTREAM_HTTP],
  [/^node (_http_\w+|http|net|stream_base_commons)$|^pkg @hono\/node-server$/, 'HTTP server and sockets (node:http, net, @hono/node-server)'],
  [/^pkg hono$/, 'hono (routing, middleware)'],
  [/^node streams\//, 'Node streams'],
  [/^\(garbage collector\)$/, 'garbage collector'],
  [/^native (writev|write\w*)$/, 'writes to sockets, pipes and files (native writev/write*)'],
  [/^native (stat|lstat|fstat|open|close|realpath|fdatasync|fsync)$|^node fs$/, 'file system calls (stat, open, …)'],
  [/^native (parse|stringify)$/, 'JSON parse / stringify'],
  [/^native RegExp:/, 'regular expressions (native)'],
  [/^ours audit\//, 'audit log (ours)'],
  [/^ours policy\/|^pkg (re2js|@marcbachmann\/cel-js|picomatch)$/, 'policy (ours, with re2js/CEL/globs)'],
  [/^ours broker\//, 'broker (ours)'],
  [/^ours tools\//, 'tool and result screening (ours)'],
  [/^ours server\//, 'server: auth, sessions, bodies (ours)'],
  [/^ours upstreams\//, 'upstream client (ours)'],
  [/^ours secrets\//, 'secrets + redaction (ours)'],
  [/^ours telemetry\/|^pkg @opentelemetry\/|^pkg prom-client$/, 'telemetry (ours + OpenTelemetry)'],
  [/^ours /, 'other of ours'],
  [/^node (async_hooks|async_local_storage\/.*|process\/promises)$/, 'AsyncLocalStorage / promise hooks'],
  [/^native (runMicrotasks|now)$|^node (process\/task_queues|timers)$/, 'event loop: microtasks, timers, nextTick'],
  [/^node crypto(\/|$)|^pkg jose$/, 'crypto / hashing'],
  [/^node (abort_controller|per_context\/domexception|event_target)$/, 'AbortSignal / DOMException / EventTarget'],
  [/^pkg (pino|pino-std-serializers|sonic-boom|thread-stream|fast-redact)$/, 'logging (pino)'],
  [/^\((program|native)\)$/, 'V8 / native, unattributed'],
  [/^node /, 'Node core (events, buffer, errors, url, …)'],
];

/** Profile buckets grouped into rows a reader can act on. */
function readableRow(bucket: string): string {
  return ROWS.find(([re]) => re.test(bucket))?.[1] ?? bucket;
}

/** The latency numbers the account at c=1 is made of. */
interface LatencyInputs {
  fdatasyncMs: number;
  addedP50Ms: Record<string, number>;
  tmpfsAddedP50Ms?: number;
}

/** The "Where the time goes" subsection: per gateway its profile, the CPU budget against it, what would have to go, and the c=1 account. */
function whereTimeGoes(profiled: Profiled[], opts: CallsOptions, lat: LatencyInputs): string {
  const out = [
    '#### Where the time goes',
    '',
    `Each Gatehouse gateway once more, alone, as a fresh process under \`node --cpu-prof --cpu-prof-interval=${PROFILE_INTERVAL_US}\`: ${fmtInt(opts.profileWarmupCalls)} calls to warm up, then ${fmtInt(opts.profileCalls)} calls at c=${opts.profileConcurrency} in a window cut out of the profile (start-up, warm-up and shutdown left out). ` +
      "The table: self time on the gateway's main thread per call, by what spent it (sampled wall time while busy: more than the CPU when the cores are oversubscribed, and without other threads such as the fdatasync in libuv's pool). " +
      'Below it, process CPU per call from /proc in the same window (profiler on), and each row\'s share of the samples applied to it.',
  ];
  for (const p of profiled) {
    const budget = GOAL.cpuRatio * p.upstreamUs;
    const over = p.ownUs - budget;
    const cpuOf = (share: number) => share * p.ownUs;
    const lean = p.table.rows.filter((r) => LEAN_PATH_REMOVES.includes(r.what));
    const leanShare = lean.reduce((s, r) => s + r.share, 0);
    const rest = over - cpuOf(leanShare);
    const further: string[] = [];
    let covered = 0;
    for (const r of p.table.rows.filter((x) => !LEAN_PATH_REMOVES.includes(x.what))) {
      if (covered >= rest) break;
      further.push(`${r.what} ${fmtInt(cpuOf(r.share))}`);
      covered += cpuOf(r.share);
    }
    out.push(
      '',
      `**Gatehouse, ${p.label}**${p.wholeRun ? ' (the window could not be cut out of this profile: the whole run is summed, start-up included)' : ''}:`,
      '',
      breakdownTable(p.table, 16),
      '',
      `CPU budget (≤ ${GOAL.cpuRatio}× the upstream's): the upstream spent ${fmtInt(p.upstreamUs)} µs per call in this window, so ${fmtInt(budget)} µs; the gateway spent ${fmtInt(p.ownUs)} µs. ` +
        (over <= 0
          ? `Within budget by ${fmtInt(-over)} µs.`
          : `${fmtInt(over)} µs per call would have to go. ` +
            `The ${listed(lean.map((r) => r.what))} rows are ${pct(leanShare)} of the samples, about ${fmtInt(cpuOf(leanShare))} µs: ` +
            (rest <= 0
              ? `a lean tools/call path without them would spend about ${fmtInt(p.ownUs - cpuOf(leanShare))} µs, within budget.`
              : `a lean tools/call path without them would still spend about ${fmtInt(p.ownUs - cpuOf(leanShare))} µs, ${fmtInt(rest)} over; ` +
                (covered >= rest
                  ? `the largest rows after them would have to go or shrink as well: ${listed(further)} µs.`
                  : `even every other row (${fmtInt(covered)} µs) would not close the gap.`))),
    );
    const added = lat.addedP50Ms[p.label];
    if (added === undefined) continue;
    const disk = lat.fdatasyncMs;
    const work = p.ownUs / 1000;
    const other = added - disk - work;
    const left = GOAL.addedP50Ms - disk;
    out.push(
      '',
      `Latency at c=1: the added p50 of +${fmt(added)} ms holds one fdatasync (${fmt(disk)} ms, the probe above), about ${fmt(work)} ms of the gateway's CPU per call (this window, c=${opts.profileConcurrency}) and ${signedMs(other)} ms besides (the extra hop, scheduling)` +
        (p.label === HTTP_LABEL && lat.tmpfsAddedP50Ms !== undefined ? `; with the audit log on tmpfs the added p50 is ${signedMs(added - lat.tmpfsAddedP50Ms)} ms less` : '') +
        '. ' +
        (left > 0 ? `The goal of ${GOAL.addedP50Ms} ms leaves ${fmt(left)} ms for everything but the disk, against ${fmt(added - disk)} ms now.` : `The disk's fdatasync alone (${fmt(disk)} ms) is over the goal of ${GOAL.addedP50Ms} ms.`),
    );
  }
  return out.join('\n');
}

const HTTP_LABEL = 'HTTP upstream';
const STDIO_LABEL = 'stdio upstream';
const listed = (xs: string[]) => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)!}`);
const pct = (share: number) => `${(share * 100).toFixed(1)}%`;
const signedMs = (x: number) => `${x < 0 ? '−' : ''}${fmt(Math.abs(x))}`;
