/**
 * The egress proxy (issue #15) beside a direct connection, in one run:
 * plain-HTTP absolute-form requests on a kept-alive connection, CONNECT
 * set-up to the first byte of an answer through the tunnel, and 100
 * concurrent tunnels moving bulk data to a loopback sink.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_EGRESS_LIMITS } from '../src/egress/proxy.js';
import { fsName } from './lib/fs-name.js';
import { cpuMs, DIST_BENCH, freePort, startProc, waitFor, type Proc } from './lib/procs.js';
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

const TINYPROXY = '/usr/bin/tinyproxy';
const TINYPROXY_INSTALL = 'apt-get install tinyproxy';

/** Debian's tinyproxy on a free loopback port: CONNECT to any port, 127.0.0.1 only, no filter, no access log. */
async function startTinyproxy(roots: string[], base: string): Promise<{ proc: Proc; port: number; version: string }> {
  const root = mkdtempSync(join(base, 'gatehouse-bench-tinyproxy-'));
  roots.push(root);
  const port = await freePort();
  const conf = join(root, 'tinyproxy.conf');
  // No ConnectPort line: every port may be CONNECTed to (tinyproxy.conf(5)).
  writeFileSync(conf, [`Port ${port}`, 'Listen 127.0.0.1', 'Timeout 600', 'MaxClients 1024', 'Allow 127.0.0.1', 'LogLevel Critical', `PidFile "${join(root, 'tinyproxy.pid')}"`, 'DisableViaHeader Yes', ''].join('\n'));
  const version = /tinyproxy\s+(\S+)/.exec(execFileSync(TINYPROXY, ['-v'], { encoding: 'utf8' }))?.[1] ?? '?';
  const proc = await startProc(TINYPROXY, ['-d', '-c', conf], undefined);
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const s = connect({ port, host: '127.0.0.1' }, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
    `tinyproxy listening on 127.0.0.1:${port}`,
  );
  return { proc, port, version };
}

/** Where a client connects: the upstream itself (TCP) or the proxy's socket for one sandbox (unix). */
type Endpoint = { port: number } | { path: string };

interface Path {
  name: string;
  note: string;
  /** undefined: direct. */
  /** The proxy process; `root` holds its state (audit/) and its unix sockets. */
  proxy?: { proc: Proc; root: string };
  /** A reference row (a peer or the bare hop): CONNECT and tunnels only, at its own endpoints; no goal is read from it. */
  reference?: { proc: Proc; endpoints: Endpoint[] };
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
  // HTTP/1.0 from tinyproxy.
  if (!/^HTTP\/1\.[01] 200 /.test(head)) {
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
    const sockets = (root: string): Endpoint[] => Array.from({ length: opts.agents }, (_, i) => ({ path: join(root, `bench-${i + 1}.sock`) }));
    const bareRoot = mkdtempSync(join(tmp, 'gatehouse-bench-egress-bare-'));
    roots.push(bareRoot);
    const bare = await startProc('node', [join(DIST_BENCH, 'procs', 'egress-bare.js'), bareRoot, String(opts.agents)], /READY/);
    procs.push(bare);
    paths.push({ ...mkPath('bare Node hop', 'reference: the same unix sockets, the CONNECT line answered, then `pipe()` both ways (bench/procs/egress-bare.ts); no policy, audit, limits or counts'), reference: { proc: bare, endpoints: sockets(bareRoot) } });
    if (existsSync(TINYPROXY)) {
      const tp = await startTinyproxy(roots, tmp);
      procs.push(tp.proc);
      paths.push({ ...mkPath('tinyproxy', `peer: Debian's tinyproxy ${tp.version} (C, a thread per connection) on loopback TCP, every port allowed, no filter, no log`), reference: { proc: tp.proc, endpoints: [{ port: tp.port }] } });
    } else {
      log(`tinyproxy not found (${TINYPROXY_INSTALL}); its row says so`);
    }

    const gatehouseRows = paths.filter((p) => p.reference === undefined);
    const endpoints = (p: Path): Endpoint[] => p.reference?.endpoints ?? (p.proxy === undefined ? [{ port: httpPort }] : sockets(p.proxy.root));
    const sinkEndpoints = (p: Path): Endpoint[] => (p.proxy === undefined && p.reference === undefined ? [{ port: sinkPort }] : endpoints(p));
    const viaProxy = (p: Path) => p.proxy !== undefined || p.reference !== undefined;
    const request = (p: Path) => Buffer.from(`GET ${p.proxy === undefined ? '' : `http://127.0.0.1:${httpPort}`}/x HTTP/1.1\r\nHost: 127.0.0.1:${httpPort}\r\nAccept: application/json\r\nUser-Agent: gatehouse-bench\r\n\r\n`);
    const cpu = (p: Path) => cpuMs((p.reference?.proc ?? p.proxy?.proc ?? upstream).child.pid ?? 0);

    for (let r = 0; r < opts.rounds; r++) {
      for (const p of rotated(gatehouseRows, r)) {
        const c0 = cpu(p);
        const ms = await keptAlive(endpoints(p)[0]!, request(p), opts.warmup, opts.requests);
        p.http.cpuMs += cpu(p) - c0;
        p.http.requests += ms.length;
        p.http.p50.push(quantile(ms, 0.5));
        p.http.p99.push(quantile(ms, 0.99));
      }
      for (const p of rotated(paths, r)) {
        const e = endpoints(p)[0]!;
        for (let i = 0; i < Math.min(10, opts.connects); i++) await connectOnce(e, viaProxy(p), httpPort);
        const ms: number[] = [];
        for (let i = 0; i < opts.connects; i++) ms.push(await connectOnce(e, viaProxy(p), httpPort));
        p.conn.p50.push(quantile(ms, 0.5));
        p.conn.p99.push(quantile(ms, 0.99));
      }
      log(`round ${r + 1}/${opts.rounds}: ${paths.map((p) => `${p.name}${p.reference ? '' : ` HTTP p50 ${fmt(p.http.p50.at(-1)!, 3)} ms,`} CONNECT p50 ${fmt(p.conn.p50.at(-1)!, 3)} ms`).join('; ')}`);
    }

    const bytes = opts.tunnelMiB * 1024 * 1024;
    for (let r = 0; r < opts.tunnelRounds; r++) {
      for (const p of rotated(paths, r)) {
        const c0 = cpu(p);
        const w = await wave(sinkEndpoints(p), viaProxy(p), sinkPort, opts.tunnels, bytes);
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
    const http = p.reference === undefined;
    return `| ${[
      `**${p.name}**`,
      http ? fmt(median(p.http.p50), 3) : '–',
      http ? fmt(median(p.http.p99), 3) : '–',
      self || !http ? '–' : `+${fmt(addedHttp(p), 3)}`,
      http ? fmtInt((p.http.cpuMs * 1000) / p.http.requests) : '–',
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
  const shm = paths.find((p) => p.proxy !== undefined && p !== proxy);
  const bare = paths.find((p) => p.name === 'bare Node hop');
  const peer = paths.find((p) => p.name === 'tinyproxy');
  const missing = peer === undefined ? [`| **tinyproxy** | – | – | – | – | – | – | – | – | – | – | – | – | not installed: \`${TINYPROXY_INSTALL}\` |`] : [];
  const against = (p: Path | undefined, what: string) => (p === undefined ? '' : ` ${what} ${fmtInt(median(p.tunnels.mibPerS))} MiB/s, ${ratio(tput(p), 1)} of direct (${p.tunnels.errors} errors); the proxy moves ${ratio(pairedRatio(proxy.tunnels.mibPerS, p.tunnels.mibPerS), 1)} of it.`);
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
    ...missing,
    '',
    `Goals (issue #15): proxy adds ≤ 0.5 ms p50 per request over a kept-alive connection — ${goal(addedHttp(proxy) <= 0.5)} (+${fmt(addedHttp(proxy), 3)} ms${shm ? `; +${fmt(addedHttp(shm), 3)} ms with the audit log on tmpfs` : ''}; ` +
      `each request is its own policy decision and durable \`egress.intent\` (one fdatasync, the difference between the two Gatehouse rows), on the caller's kept-alive upstream connection; direct takes ${fmt(median(direct.http.p50), 3)} ms p50 kept alive); ` +
      `100 concurrent CONNECT tunnels at line rate on loopback — ${goal(allErrors === 0 && tput(proxy) >= 0.9)} (${fmtInt(median(proxy.tunnels.mibPerS))} MiB/s, ${ratio(tput(proxy), 1)} of 100 direct connections, ${proxy.tunnels.errors} errors; "line rate" read as ≥ 0.90× of direct with 0 errors).` +
      `${against(bare, 'Bytes through one more Node process and nothing else (the bare hop):')}${against(peer, 'Through tinyproxy:')}` +
      (bare === undefined ? '' : ' On 2 cores every byte a hop moves is read and written once more by a third process competing with the client and the sink, so no user-space proxy reaches the direct rate here; the bare-hop row is the ceiling for this design.'),
    '',
    `**One sandbox opening ${opts.tunnels} tunnels at once** (one caller, default limits): ${cappedText} — the proxy caps open connections per caller at \`maxConnectionsPerCaller\` (default ${DEFAULT_EGRESS_LIMITS.maxConnectionsPerCaller}); the ${opts.tunnels}-tunnel rows spread them over ${opts.agents} sandboxes (${opts.agents} unix sockets, agents bench-1…${opts.agents}, ${Math.ceil(opts.tunnels / opts.agents)} tunnels each), as ${opts.agents} agents would. ` +
      `The disk-state proxy's audit log holds ${fmtInt(audited.intents)} \`egress.intent\` and ${fmtInt(audited.outcomes)} \`egress\` records for the ${fmtInt(expected)} requests and tunnels it let through.`,
    '',
    `${opts.rounds} interleaved rounds (order rotated each round); per round and path ${opts.requests} sequential \`GET /x\` (after ${opts.warmup} untimed) on one kept-alive connection — through the proxy in absolute form (\`GET http://127.0.0.1:PORT/x\`), direct in origin form — then ${opts.connects} sequential connections each carrying one \`GET\` with \`Connection: close\`: ` +
      'through the proxy `CONNECT 127.0.0.1:PORT` on a new unix-socket connection, the `GET` sent after the `200`, timed from `connect()` to the first byte of the upstream\'s answer; direct, a new TCP connection and the `GET`, timed the same way. ' +
      `Each plain-HTTP request through the proxy is its own decision, durable \`egress.intent\` (fdatasync) and \`egress\` record, sent on the caller's idle kept-alive upstream connection to a checked address when there is one (src/egress/upstream-pool.ts), while the client's connection to the proxy stays open. p50/p99: median over rounds of each round's percentile; "added" and "vs direct": median over rounds of the same-round difference or ratio. ` +
      `Tunnels: ${opts.tunnelRounds} round(s), each path in rotated order: ${opts.tunnels} connections opened at once ("set-up": until all are open, tunnels established), then each sends ${opts.tunnelMiB} MiB in 64 KiB writes with backpressure to a TCP sink that answers \`done\` after the last byte; MiB/s = bytes delivered ÷ time from the first write to the last \`done\`. ` +
      'CPU: user+system time of the proxy process (for direct: the upstream process) during the HTTP runs, per request, and during the tunnel waves, per GiB moved. ' +
      'Three processes: the bench (client), the upstreams (bench/procs/egress-upstream.ts: node:http answering a 53-byte JSON body, and the sink) and the proxy (bench/procs/egress-proxy.ts: `createEgressProxy` with the policy loader, a 4-rule policy, the durable `AuditLog`, default limits, one unix socket per sandbox handed to `accept()` as a relay would); on 2 cores the proxied path competes with client and upstream for CPU, the direct one does not. ' +
      'The reference rows take part in the CONNECT and tunnel runs only (same rotation): the bare hop is a fourth process on its own unix sockets, tinyproxy listens on loopback TCP (its CPU is its own process\'s).',
    '',
    `${machine} Load average at the end ${fmt(loadavg()[0] ?? 0)} / ${fmt(loadavg()[1] ?? 0)}.`,
  ].join('\n');
}
