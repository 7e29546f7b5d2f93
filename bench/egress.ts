/**
 * The egress proxy (issue #15) beside a direct connection, in one run:
 * plain-HTTP absolute-form requests on a kept-alive connection, CONNECT
 * set-up to the first byte of an answer through the tunnel, and 100
 * concurrent tunnels moving bulk data to a loopback sink.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_EGRESS_LIMITS } from '../src/egress/proxy.js';
import { fsName } from './lib/fs-name.js';
import { cpuMs, DIST_BENCH, startProc, type Proc } from './lib/procs.js';
import { fmt, fmtInt, goal, machineLine, median, quantile, ratio, rotated } from './lib/stats.js';

export interface EgressOptions {
  rounds: number;
  warmup: number;
  /** Sequential plain-HTTP requests per round and path. */
  requests: number;
  /** Sequential CONNECT (or direct connect) + one request per round and path. */
  connects: number;
  tunnelRounds: number;
  tunnels: number;
  tunnelMiB: number;
  /** Sandboxes (agents) the tunnels are spread over; each has its own socket and the default per-caller limit. */
  agents: number;
}
export const EGRESS_FULL: EgressOptions = { rounds: 7, warmup: 100, requests: 1000, connects: 200, tunnelRounds: 5, tunnels: 100, tunnelMiB: 8, agents: 4 };
export const EGRESS_QUICK: EgressOptions = { rounds: 2, warmup: 30, requests: 200, connects: 40, tunnelRounds: 1, tunnels: 100, tunnelMiB: 1, agents: 4 };

/** Where a client connects: the upstream itself (TCP) or the proxy's socket for one sandbox (unix). */
type Endpoint = { port: number } | { path: string };

interface Path {
  name: string;
  note: string;
  /** undefined: direct. */
  /** The proxy process; `root` holds its state (audit/) and its unix sockets. */
  proxy?: { proc: Proc; root: string };
  http: { p50: number[]; p99: number[]; cpuMs: number; requests: number };
  conn: { p50: number[]; p99: number[] };
  tunnels: { mibPerS: number[]; setupMs: number[]; errors: number; firstError?: string; cpuMs: number; mib: number };
}

const open = (e: Endpoint): Socket => {
  const s = 'port' in e ? connect({ port: e.port, host: '127.0.0.1', noDelay: true }) : connect({ path: e.path });
  s.on('error', () => undefined);
  return s;
};

/**
 * A lean HTTP/1.1 client on one socket: pre-built request bytes, the answer
 * read by content-length (no parser library), so the proxy is what gets measured.
 */
class KeptAlive {
  #buf: Buffer = Buffer.alloc(0);
  #waiting: { resolve: () => void; reject: (e: Error) => void } | undefined;
  constructor(readonly socket: Socket) {
    socket.on('data', (b: Buffer) => {
      this.#buf = this.#buf.length === 0 ? b : Buffer.concat([this.#buf, b]);
      this.#check();
    });
    socket.on('close', () => this.#waiting?.reject(new Error(`connection closed; had ${JSON.stringify(this.#buf.toString('latin1').slice(0, 200))}`)));
  }
  #check(): void {
    const end = this.#buf.indexOf('\r\n\r\n');
    if (end === -1 || this.#waiting === undefined) return;
    const head = this.#buf.subarray(0, end).toString('latin1');
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? Number.NaN);
    if (!head.startsWith('HTTP/1.1 200') || !Number.isFinite(len)) return this.#waiting.reject(new Error(`unexpected answer: ${head.slice(0, 200)}`));
    if (this.#buf.length < end + 4 + len) return;
    this.#buf = this.#buf.subarray(end + 4 + len);
    const w = this.#waiting;
    this.#waiting = undefined;
    w.resolve();
  }
  request(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.socket.write(bytes);
    });
  }
}

/** Latencies (ms) of `n` sequential requests on one kept-alive connection, after `warmup` untimed ones. */
async function keptAlive(e: Endpoint, req: Buffer, warmup: number, n: number): Promise<number[]> {
  const c = new KeptAlive(open(e));
  try {
    for (let i = 0; i < warmup; i++) await c.request(req);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await c.request(req);
      out.push(performance.now() - t0);
    }
    return out;
  } finally {
    c.socket.destroy();
  }
}

/** Reads until the first "\r\n\r\n"; the head and whatever came after it. */
function readHead(s: Socket): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const onData = (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      s.off('data', onData);
      s.off('close', onClose);
      s.pause();
      resolve({ head: buf.subarray(0, end).toString('latin1'), rest: buf.subarray(end + 4) });
    };
    const onClose = () => reject(new Error(`closed before an answer: ${JSON.stringify(buf.toString('latin1').slice(0, 200))}`));
    s.on('data', onData);
    s.once('close', onClose);
  });
}

/** Opens a tunnel to 127.0.0.1:port through the proxy; rejects unless the answer is 200. */
async function tunnel(e: Endpoint, port: number): Promise<Socket> {
  const s = open(e);
  s.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  const { head, rest } = await readHead(s);
  if (!head.startsWith('HTTP/1.1 200')) {
    s.destroy();
    throw new Error(`CONNECT answered ${head.split('\r\n')[0] ?? ''}`);
  }
  if (rest.length > 0) s.unshift(rest);
  return s;
}

/** connect() called → first byte of the answer to one GET (through a new tunnel, or on a new direct connection), ms; waits for the close. */
async function connectOnce(e: Endpoint, viaProxy: boolean, httpPort: number): Promise<number> {
  const get = `GET /x HTTP/1.1\r\nHost: 127.0.0.1:${httpPort}\r\nConnection: close\r\n\r\n`;
  const t0 = performance.now();
  const s = viaProxy ? await tunnel(e, httpPort) : open(e);
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  const first = new Promise<number>((resolve, reject) => {
    s.once('data', () => resolve(performance.now() - t0));
    s.once('close', () => reject(new Error('closed before the first byte')));
  });
  s.write(get);
  s.resume();
  const ms = await first;
  await closed;
  return ms;
}

interface Wave {
  mibPerS: number;
  setupMs: number;
  errors: number;
  firstError?: string;
}

/** `n` connections (tunnels when `viaProxy`), spread over `endpoints`, each sending `bytes` to the sink at once. */
async function wave(endpoints: Endpoint[], viaProxy: boolean, sinkPort: number, n: number, bytes: number): Promise<Wave> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const errors: string[] = [];
  const t0 = performance.now();
  const opened = await Promise.allSettled(
    Array.from({ length: n }, async (_, i) => {
      const e = endpoints[i % endpoints.length]!;
      if (viaProxy) return tunnel(e, sinkPort);
      const s = open(e);
      await new Promise<void>((resolve, reject) => {
        s.once('connect', () => resolve());
        s.once('error', reject);
      });
      return s;
    }),
  );
  const setupMs = performance.now() - t0;
  const sockets = opened.flatMap((r) => {
    if (r.status === 'fulfilled') return [r.value];
    errors.push((r.reason as Error).message);
    return [];
  });
  const send = (s: Socket) =>
    new Promise<void>((resolve, reject) => {
      let answer = '';
      const timer = setTimeout(() => reject(new Error('no "done" within 120 s')), 120_000);
      s.on('data', (b: Buffer) => (answer += b.toString('latin1')));
      s.once('close', () => {
        clearTimeout(timer);
        if (answer === 'done\n') resolve();
        else reject(new Error(`sink answered ${JSON.stringify(answer.slice(0, 100))}`));
      });
      s.resume();
      void (async () => {
        s.write(`${bytes}\n`);
        for (let sent = 0; sent < bytes && !s.destroyed; sent += chunk.length) {
          if (!s.write(sent + chunk.length <= bytes ? chunk : chunk.subarray(0, bytes - sent))) await new Promise((r) => s.once('drain', r));
        }
      })();
    });
  const t1 = performance.now();
  const sent = await Promise.allSettled(sockets.map(send));
  const ms = performance.now() - t1;
  for (const r of sent) if (r.status === 'rejected') errors.push((r.reason as Error).message);
  for (const s of sockets) s.destroy();
  const ok = sent.filter((r) => r.status === 'fulfilled').length;
  return { mibPerS: (ok * bytes) / (1024 * 1024) / (ms / 1000), setupMs, errors: errors.length, ...(errors[0] !== undefined ? { firstError: errors[0] } : {}) };
}

/** Of `n` tunnels opened at once by one sandbox (one caller), how many the proxy accepts and how many it refuses, by status line. */
async function oneCaller(e: Endpoint, sinkPort: number, n: number): Promise<Map<string, number>> {
  const got = await Promise.allSettled(Array.from({ length: n }, () => tunnel(e, sinkPort)));
  const counts = new Map<string, number>();
  for (const r of got) {
    const k = r.status === 'fulfilled' ? '200' : /answered HTTP\/1\.1 (\d+)/.exec((r.reason as Error).message)?.[1] ?? (r.reason as Error).message;
    counts.set(k, (counts.get(k) ?? 0) + 1);
    if (r.status === 'fulfilled') r.value.destroy();
  }
  return counts;
}

/** egress.intent and egress records in a proxy's audit log. */
function auditCounts(root: string): { intents: number; outcomes: number } {
  const dir = join(root, 'audit');
  let intents = 0;
  let outcomes = 0;
  for (const f of readdirSync(dir).filter((n) => /^audit.*\.jsonl$/.test(n))) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (line.includes('"event":"egress.intent"')) intents++;
      else if (line.includes('"event":"egress"')) outcomes++;
    }
  }
  return { intents, outcomes };
}

export async function benchEgress(opts: EgressOptions, log: (s: string) => void): Promise<string> {
  const machine = machineLine();
  const roots: string[] = [];
  const procs: Proc[] = [];
  try {
    const upstream = await startProc('node', [join(DIST_BENCH, 'procs', 'egress-upstream.js')], /LISTENING http=(\d+) sink=(\d+)/);
    procs.push(upstream);
    const httpPort = Number(upstream.match[1]);
    const sinkPort = Number(upstream.match[2]);
    const mkPath = (name: string, note: string): Path => ({ name, note, http: { p50: [], p99: [], cpuMs: 0, requests: 0 }, conn: { p50: [], p99: [] }, tunnels: { mibPerS: [], setupMs: [], errors: 0, cpuMs: 0, mib: 0 } });
    const proxied = async (name: string, note: string, base: string): Promise<Path> => {
      const root = mkdtempSync(join(base, 'gatehouse-bench-egress-'));
      roots.push(root);
      const proc = await startProc('node', [join(DIST_BENCH, 'procs', 'egress-proxy.js'), root, root, String(opts.agents), String(httpPort), String(sinkPort)], /READY/);
      procs.push(proc);
      return { ...mkPath(name, note), proxy: { proc, root } };
    };
    const tmp = tmpdir();
    const paths: Path[] = [
      mkPath('direct', 'client → upstream on loopback TCP'),
      await proxied('egress proxy', `client → unix socket → proxy → upstream: policy decision, durable \`egress.intent\` (state on ${fsName(tmp)}), dial, \`egress\` record at the end`, tmp),
    ];
    if (existsSync('/dev/shm')) paths.push(await proxied('egress proxy, audit on tmpfs', 'the same, state in /dev/shm (fdatasync ≈ 0)', '/dev/shm'));

    const endpoints = (p: Path): Endpoint[] =>
      p.proxy === undefined ? [{ port: httpPort }] : Array.from({ length: opts.agents }, (_, i) => ({ path: join(p.proxy!.root, `bench-${i + 1}.sock`) }));
    const sinkEndpoints = (p: Path): Endpoint[] => (p.proxy === undefined ? [{ port: sinkPort }] : endpoints(p));
    const request = (p: Path) => Buffer.from(`GET ${p.proxy === undefined ? '' : `http://127.0.0.1:${httpPort}`}/x HTTP/1.1\r\nHost: 127.0.0.1:${httpPort}\r\nAccept: application/json\r\nUser-Agent: gatehouse-bench\r\n\r\n`);
    const cpu = (p: Path) => (p.proxy === undefined ? cpuMs(upstream.child.pid ?? 0) : cpuMs(p.proxy.proc.child.pid ?? 0));

    for (let r = 0; r < opts.rounds; r++) {
      for (const p of rotated(paths, r)) {
        const c0 = cpu(p);
        const ms = await keptAlive(endpoints(p)[0]!, request(p), opts.warmup, opts.requests);
        p.http.cpuMs += cpu(p) - c0;
        p.http.requests += ms.length;
        p.http.p50.push(quantile(ms, 0.5));
        p.http.p99.push(quantile(ms, 0.99));
      }
      for (const p of rotated(paths, r)) {
        const e = endpoints(p)[0]!;
        for (let i = 0; i < Math.min(10, opts.connects); i++) await connectOnce(e, p.proxy !== undefined, httpPort);
        const ms: number[] = [];
        for (let i = 0; i < opts.connects; i++) ms.push(await connectOnce(e, p.proxy !== undefined, httpPort));
        p.conn.p50.push(quantile(ms, 0.5));
        p.conn.p99.push(quantile(ms, 0.99));
      }
      log(`round ${r + 1}/${opts.rounds}: ${paths.map((p) => `${p.name} HTTP p50 ${fmt(p.http.p50.at(-1)!, 3)} ms, CONNECT p50 ${fmt(p.conn.p50.at(-1)!, 3)} ms`).join('; ')}`);
    }

    const bytes = opts.tunnelMiB * 1024 * 1024;
    for (let r = 0; r < opts.tunnelRounds; r++) {
      for (const p of rotated(paths, r)) {
        const c0 = cpu(p);
        const w = await wave(sinkEndpoints(p), p.proxy !== undefined, sinkPort, opts.tunnels, bytes);
        p.tunnels.cpuMs += cpu(p) - c0;
        p.tunnels.mib += (opts.tunnels * bytes) / (1024 * 1024);
        p.tunnels.mibPerS.push(w.mibPerS);
        p.tunnels.setupMs.push(w.setupMs);
        p.tunnels.errors += w.errors;
        if (w.firstError !== undefined && p.tunnels.firstError === undefined) p.tunnels.firstError = w.firstError;
        log(`tunnels ${r + 1}/${opts.tunnelRounds}: ${p.name} ${fmt(w.mibPerS, 0)} MiB/s, set-up ${fmt(w.setupMs, 1)} ms, ${w.errors} errors${w.firstError ? ` (${w.firstError})` : ''}`);
      }
    }

    const disk = paths[1]!;
    const capped = await oneCaller(endpoints(disk)[0]!, sinkPort, opts.tunnels);
    for (const p of paths) await p.proxy?.proc.stop();
    const audited = auditCounts(disk.proxy!.root);
    return table(paths, opts, capped, audited, machine);
  } finally {
    for (const p of procs) await p.stop();
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  }
}

function table(paths: Path[], opts: EgressOptions, capped: Map<string, number>, audited: { intents: number; outcomes: number }, machine: string): string {
  const direct = paths[0]!;
  const proxy = paths[1]!;
  const paired = (xs: number[], base: number[]) => median(xs.map((x, i) => x - base[i]!));
  const pairedRatio = (xs: number[], base: number[]) => median(xs.map((x, i) => x / base[i]!));
  const addedHttp = (p: Path) => paired(p.http.p50, direct.http.p50);
  const addedConn = (p: Path) => paired(p.conn.p50, direct.conn.p50);
  const tput = (p: Path) => pairedRatio(p.tunnels.mibPerS, direct.tunnels.mibPerS);
  const rows = paths.map((p) => {
    const self = p === direct;
    return `| ${[
      `**${p.name}**`,
      fmt(median(p.http.p50), 3),
      fmt(median(p.http.p99), 3),
      self ? '–' : `+${fmt(addedHttp(p), 3)}`,
      fmtInt((p.http.cpuMs * 1000) / p.http.requests),
      fmt(median(p.conn.p50), 3),
      fmt(median(p.conn.p99), 3),
      self ? '–' : `+${fmt(addedConn(p), 3)}`,
      fmtInt(median(p.tunnels.mibPerS)),
      self ? '1.00×' : ratio(tput(p), 1),
      fmtInt(median(p.tunnels.setupMs)),
      String(p.tunnels.errors),
      fmt(p.tunnels.cpuMs / 1000 / (p.tunnels.mib / 1024), 2),
      p.note,
    ].join(' | ')} |`;
  });
  const shm = paths[2];
  // Every request or tunnel the proxy let through has one intent; 429s at the connection cap are refused before the gate, unrecorded.
  const expected = opts.rounds * (opts.warmup + opts.requests + Math.min(10, opts.connects) + opts.connects) + opts.tunnelRounds * opts.tunnels + (capped.get('200') ?? 0);
  const cappedText = [...capped.entries()].map(([k, v]) => `${v} × ${k}`).join(', ');
  const allErrors = paths.reduce((n, p) => n + p.tunnels.errors, 0);
  return [
    '### 7. Egress proxy (plain HTTP and CONNECT through `src/egress/proxy.ts`, to loopback upstreams)',
    '',
    '| path | HTTP p50 ms | HTTP p99 ms | added HTTP p50 ms | CPU µs/request | CONNECT → first byte p50 ms | p99 ms | added p50 ms | 100 tunnels MiB/s | vs direct | set-up ms (all 100) | errors | CPU s/GiB | what it does |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...rows,
    '',
    `Goals (issue #15): proxy adds ≤ 0.5 ms p50 per request over a kept-alive connection — ${goal(addedHttp(proxy) <= 0.5)} (+${fmt(addedHttp(proxy), 3)} ms${shm ? `; +${fmt(addedHttp(shm), 3)} ms with the audit log on tmpfs` : ''}; ` +
      `each request is its own policy decision and durable \`egress.intent\` (one fdatasync, the difference between the two Gatehouse rows), on the caller's kept-alive upstream connection; direct takes ${fmt(median(direct.http.p50), 3)} ms p50 kept alive); ` +
      `100 concurrent CONNECT tunnels at line rate on loopback — ${goal(allErrors === 0 && tput(proxy) >= 0.9)} (${fmtInt(median(proxy.tunnels.mibPerS))} MiB/s, ${ratio(tput(proxy), 1)} of 100 direct connections, ${proxy.tunnels.errors} errors; "line rate" read as ≥ 0.90× of direct with 0 errors).`,
    '',
    `**One sandbox opening ${opts.tunnels} tunnels at once** (one caller, default limits): ${cappedText} — the proxy caps open connections per caller at \`maxConnectionsPerCaller\` (default ${DEFAULT_EGRESS_LIMITS.maxConnectionsPerCaller}); the ${opts.tunnels}-tunnel rows spread them over ${opts.agents} sandboxes (${opts.agents} unix sockets, agents bench-1…${opts.agents}, ${Math.ceil(opts.tunnels / opts.agents)} tunnels each), as ${opts.agents} agents would. ` +
      `The disk-state proxy's audit log holds ${fmtInt(audited.intents)} \`egress.intent\` and ${fmtInt(audited.outcomes)} \`egress\` records for the ${fmtInt(expected)} requests and tunnels it let through.`,
    '',
    `${opts.rounds} interleaved rounds (order rotated each round); per round and path ${opts.requests} sequential \`GET /x\` (after ${opts.warmup} untimed) on one kept-alive connection — through the proxy in absolute form (\`GET http://127.0.0.1:PORT/x\`), direct in origin form — then ${opts.connects} sequential connections each carrying one \`GET\` with \`Connection: close\`: ` +
      'through the proxy `CONNECT 127.0.0.1:PORT` on a new unix-socket connection, the `GET` sent after the `200`, timed from `connect()` to the first byte of the upstream\'s answer; direct, a new TCP connection and the `GET`, timed the same way. ' +
      `Each plain-HTTP request through the proxy is its own decision, durable \`egress.intent\` (fdatasync) and \`egress\` record, sent on the caller's idle kept-alive upstream connection to a checked address when there is one (src/egress/upstream-pool.ts), while the client's connection to the proxy stays open. p50/p99: median over rounds of each round's percentile; "added" and "vs direct": median over rounds of the same-round difference or ratio. ` +
      `Tunnels: ${opts.tunnelRounds} round(s), each path in rotated order: ${opts.tunnels} connections opened at once ("set-up": until all are open, tunnels established), then each sends ${opts.tunnelMiB} MiB in 64 KiB writes with backpressure to a TCP sink that answers \`done\` after the last byte; MiB/s = bytes delivered ÷ time from the first write to the last \`done\`. ` +
      'CPU: user+system time of the proxy process (for direct: the upstream process) during the HTTP runs, per request, and during the tunnel waves, per GiB moved. ' +
      'Three processes: the bench (client), the upstreams (bench/procs/egress-upstream.ts: node:http answering a 53-byte JSON body, and the sink) and the proxy (bench/procs/egress-proxy.ts: `createEgressProxy` with the policy loader, a 4-rule policy, the durable `AuditLog`, default limits, one unix socket per sandbox handed to `accept()` as a relay would); on 2 cores the proxied path competes with client and upstream for CPU, the direct one does not.',
    '',
    `${machine} Load average at the end ${fmt(loadavg()[0] ?? 0)} / ${fmt(loadavg()[1] ?? 0)}.`,
  ].join('\n');
}
