/**
 * The pieces of src/upstreams/stdio.ts on their own: the capped line reader,
 * the id probe of an oversized line, the log budget, and the transport's
 * process handling against small shell servers (issue #24).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '../../src/log.js';
import { LineReader, LogBudget, reaperPath, requestIdOf, StdioTransport, type StdioServer } from '../../src/upstreams/stdio.js';
import { isAlive, until } from '../helpers/gateway.js';
import { tempDir } from '../helpers/tmp.js';

function reader(max: number, keep = 16) {
  const lines: string[] = [];
  const over: Array<{ bytes: number; head: string; tail: string }> = [];
  const r = new LineReader(
    max,
    keep,
    (l) => lines.push(l.toString()),
    (bytes, head, tail) => over.push({ bytes, head: head.toString(), tail: tail.toString() }),
  );
  return { r, lines, over };
}

describe('LineReader', () => {
  it('splits lines across chunks, several per chunk', () => {
    const { r, lines } = reader(100);
    for (const c of ['{"a":', '1}\n{"b"', ':2}\n{"c":3}\n{"d"']) r.push(Buffer.from(c));
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
    r.push(Buffer.from(':4}\n'));
    expect(lines[3]).toBe('{"d":4}');
  });

  it('an endless line over the cap: reported once it ends, with its size, head and tail; nothing between is kept', () => {
    const { r, lines, over } = reader(1_000, 8);
    r.push(Buffer.from('{"id":7,"result":"'));
    const chunk = Buffer.alloc(64 * 1024, 'x');
    for (let i = 0; i < 64; i++) r.push(chunk);
    // Memory: the reader holds the head and a tail of ID_PROBE_BYTES, not the 4 MiB.
    const held = (r as unknown as { parts: Buffer[] }).parts.reduce((n, p) => n + p.length, 0);
    expect(held).toBe(0);
    r.push(Buffer.from('"}\n{"ok":1}\n'));
    expect(over).toHaveLength(1);
    expect(over[0]?.bytes).toBe(18 + 64 * 64 * 1024 + 2);
    expect(over[0]?.head).toBe('{"id":7,');
    expect(over[0]?.tail.endsWith('xx"}')).toBe(true);
    expect(lines).toEqual(['{"ok":1}']);
  });

  it('a line exactly at the cap is a line', () => {
    const { r, lines, over } = reader(10);
    r.push(Buffer.from('0123456789\n'));
    expect(lines).toEqual(['0123456789']);
    expect(over).toEqual([]);
  });
});

describe('requestIdOf (the id of an oversized line, from its ends)', () => {
  const id = (head: string, tail = '') => requestIdOf(Buffer.from(head), Buffer.from(tail));
  it.each([
    ['{"jsonrpc":"2.0","id":12,"result":{"content":[{"type":"text","text":"xxx', '', 12],
    ['{"id":"a\\"b","result":', '', 'a"b'],
    ['{"result":{"content":[{"id":99,"text":"x', 'xxx"}]},"jsonrpc":"2.0","id":5}', 5],
    ['{"result":{"content":[{"id":99,"text":"x', 'xxx"}]},"jsonrpc":"2.0","id":"s-1"}\r', 's-1'],
  ])('%s … %s → %s', (head, tail, expected) => {
    expect(id(head, tail)).toEqual(expected);
  });

  it.each([
    // The id neither first nor last (a nested "id" must not be taken for it).
    ['{"result":{"id":3,"text":"x', 'xx"},"id":5,"jsonrpc":"2.0"}'],
    ['{"result":{"content":[{"id":99,"text":"x', 'x"}]}}'],
    ['not json at all', 'nor here'],
    ['{"id":1e400,"result":', ''],
  ])('no id: %s … %s', (head, tail) => {
    expect(id(head, tail)).toBeUndefined();
  });
});

describe('LogBudget', () => {
  it('lets through one second of bytes, then refills at the rate; counts and reports the rest', () => {
    let now = 0;
    const reports: number[] = [];
    const b = new LogBudget(1_000, (n) => reports.push(n), () => now);
    expect(b.take(600)).toBe(true);
    expect(b.take(400)).toBe(true);
    expect(b.take(1)).toBe(false);
    expect(b.exhausted()).toBe(true);
    b.drop(5_000);
    now += 500;
    expect(b.take(400)).toBe(true);
    expect(b.take(200)).toBe(false);
    b.flush();
    expect(reports).toEqual([5_201]);
    b.flush(); // nothing new: no report, the timer stops
    expect(reports).toEqual([5_201]);
    b.stop();
  });

  it('a line larger than the whole bucket passes only when the bucket is full, and leaves it in debt', () => {
    let now = 0;
    const b = new LogBudget(100, () => undefined, () => now);
    expect(b.take(250)).toBe(true);
    now += 1_000;
    expect(b.take(10)).toBe(false);
    now += 2_000;
    expect(b.take(10)).toBe(true);
    b.stop();
  });
});

/** Pids whose command line holds `marker`. */
function withMarker(marker: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(marker)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const sh = (script: string, marker: string): StdioServer => ({ command: '/bin/sh', args: ['-c', script, marker], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, cwd: '/' });
const connector = { name: 'unit', limits: {} };
let open: StdioTransport[] = [];
afterEach(async () => {
  await Promise.all(open.map((t) => t.close()));
  open = [];
});

function transport(server: StdioServer, reaper?: string | null, log = silentLogger) {
  const t = new StdioTransport(server, { connector, log, graceMs: 300, ...(reaper !== undefined ? { reaper } : {}) });
  open.push(t);
  return t;
}

describe.skipIf(process.platform !== 'linux')('StdioTransport processes', () => {
  // A stubborn sleeper (SIGTERM ignored) that carries the marker in its command line.
  const sleeper = (marker: string) => `sh -c 'trap "" TERM; while :; do sleep 1; done' ${marker}`;

  it('server exits while a grandchild holds its stdout: the transport closes at once and the grandchild is killed (process group only)', async () => {
    const marker = `unit-grandchild-${process.pid}-${Date.now()}`;
    const t = transport(sh(`${sleeper(`${marker}-g`)} & sleep 0.2; exit 0`, marker), null);
    let closed = false;
    t.onclose = () => (closed = true);
    await t.start();
    await until(() => withMarker(`${marker}-g`).length > 0, 'the grandchild');
    await until(() => closed, 'the transport closing on the child exit', 3_000);
    await until(() => withMarker(marker).length === 0, 'no process of the server left', 3_000);
  });

  it('a missing command fails the start as spawn would (ENOENT), with or without the reaper', async () => {
    for (const reaper of [null, undefined]) {
      const t = transport({ command: 'no-such-command-xyz', args: [], env: { PATH: '/usr/bin:/bin' }, cwd: '/' }, reaper);
      await expect(t.start()).rejects.toThrow('spawn no-such-command-xyz ENOENT');
    }
  });

  it.skipIf(reaperPath() === undefined)('orphans that call setsid() die with the server under the reaper, on close', async () => {
    const marker = `unit-setsid-${process.pid}-${Date.now()}`;
    const t = transport(sh(`setsid ${sleeper(`${marker}-escaped`)} & ${sleeper(`${marker}-group`)} & exec sleep 600`, marker));
    await t.start();
    await until(() => withMarker(`${marker}-escaped`).length > 0 && withMarker(`${marker}-group`).length > 0, 'both children');
    const pids = withMarker(marker);
    const t0 = performance.now();
    await t.close();
    expect(performance.now() - t0).toBeLessThan(2_500);
    await until(() => pids.every((p) => !isAlive(p) || readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z')), 'every process of the server gone', 3_000);
  });

  it.skipIf(reaperPath() === undefined)('a server exiting under the reaper leaves no setsid() orphan, and the transport closes', async () => {
    const marker = `unit-exit-${process.pid}-${Date.now()}`;
    const t = transport(sh(`setsid ${sleeper(`${marker}-escaped`)} & sleep 0.3; exit 3`, marker));
    let closed = false;
    t.onclose = () => (closed = true);
    await t.start();
    await until(() => closed, 'the transport closing', 3_000);
    await until(() => withMarker(marker).length === 0, 'no process of the server left', 3_000);
  });

  it('a server that never reads its stdin: at most one line\'s worth is queued in the gateway, then sends fail naming why', async () => {
    const t = new StdioTransport(sh('exec sleep 30', 'unit-no-stdin'), { connector: { name: 'unit', limits: { resultBytes: 1024 } }, log: silentLogger, graceMs: 300, reaper: null });
    open.push(t);
    await t.start();
    const big = { jsonrpc: '2.0' as const, method: 'notifications/message', params: { data: 'x'.repeat(10_000) } };
    let sent = 0;
    let refused: unknown;
    for (let i = 0; i < 1_000 && refused === undefined; i++) {
      // Not awaited: a send waits for the pipe to drain, which this server never lets happen.
      void t.send(big).catch((e: unknown) => (refused ??= e));
      sent++;
      await new Promise((r) => setImmediate(r));
    }
    expect(String(refused)).toMatch(/the upstream is not reading its stdin \(\d+ bytes in \d+ messages waiting for it\)/);
    // The pipe (64 KiB) plus one line's worth (resultBytes + 64 KiB), not 1,000 × 10 KB.
    expect(sent * 10_000).toBeLessThan(400_000);
  });

  it('a busy server that writes thousands of requests before it reads one answer (5,000 answers queued for it): none is lost', async () => {
    // 5,000 answers (~70 bytes each) are several pipes' worth: most wait in the gateway until the server reads.
    const dir = tempDir('gatehouse-stdio-busy-');
    const t = new StdioTransport(sh(`sleep 1; exec wc -l > ${dir}/count`, 'unit-busy-reader'), { connector, log: silentLogger, graceMs: 3_000, reaper: null });
    open.push(t);
    await t.start();
    const n = 5_000;
    const sends = Array.from({ length: n }, (_, i) => t.send({ jsonrpc: '2.0', id: `s${i}`, error: { code: -32600, message: 'Sampling is not allowed here' } }));
    const settled = await Promise.allSettled(sends);
    expect(settled.filter((s) => s.status === 'rejected')).toEqual([]);
    await t.close();
    expect(readFileSync(`${dir}/count`, 'utf8').trim()).toBe(String(n));
  });

  it('non-JSON, escape sequences and invalid UTF-8 on stdout and stderr: logged escaped, no message delivered, nothing thrown', async () => {
    const lines: string[] = [];
    const log = createLogger({ destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) });
    const script = `printf 'not json\\n\\033]0;title\\007\\033[2J\\n[1,2]\\n'; printf 'err \\033[31mred\\n' >&2; printf '\\377\\376\\n' >&2; sleep 0.3`;
    const t = transport(sh(script, 'unit-garbage'), null, log);
    const messages: unknown[] = [];
    t.onmessage = (m) => messages.push(m);
    let closed = false;
    t.onclose = () => (closed = true);
    await t.start();
    await until(() => closed, 'the child to exit', 3_000);
    expect(messages).toEqual([]);
    const all = lines.join('');
    expect(all).not.toContain('\x1b');
    expect(all).not.toContain('\\u001b'); // escaped before logging: shown as \x1b, not a JSON escape of the raw byte
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.filter((r) => r.msg === 'upstream wrote a line on stdout that is not a JSON-RPC message; ignored').map((r) => r.stdout)).toEqual([
      'not json',
      '\\x1b]0;title\\x07\\x1b[2J',
      '[1,2]',
    ]);
    expect(records.filter((r) => r.msg === 'upstream stderr').map((r) => r.stderr)).toEqual(['err \\x1b[31mred', '\ufffd\ufffd']);
  });
});

describe.skipIf(reaperPath() === undefined)('gatehouse-reaper on its own', () => {
  it('the gateway dies hard (SIGKILL): the reaper (PR_SET_PDEATHSIG) takes the server and its setsid() orphans with it', async () => {
    const marker = `unit-pdeath-${process.pid}-${Date.now()}`;
    const stubborn = `sh -c 'trap "" TERM; while :; do sleep 1; done' ${marker}-child`;
    // A stand-in gateway: a shell that starts the reaper as its child and waits.
    const gateway = spawn('/bin/sh', ['-c', `"$0" --parent $$ --grace-ms 100 -- /bin/sh -c "setsid ${stubborn} & ${stubborn} & wait" ${marker} & wait`, reaperPath() ?? ''], { stdio: 'ignore' });
    await until(() => withMarker(`${marker}-child`).length >= 2, 'both children');
    const tree = withMarker(marker);
    gateway.kill('SIGKILL');
    await until(() => tree.every((p) => !isAlive(p) || readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z')), 'every process of the server gone', 5_000);
  });

  it('started after its parent is gone (PDEATHSIG would never fire): refuses to run the server', () => {
    const r = spawnSync(reaperPath() ?? '', ['--parent', '1', '--', '/bin/echo', 'ran'], { encoding: 'utf8' });
    expect(r.status).toBe(125);
    expect(r.stdout).toBe('');
  });

  it('passes the server exit status through: its code, or 128+N for signal N', async () => {
    const run = (script: string, ...opts: string[]) => spawnSync(reaperPath() ?? '', ['--parent', String(process.pid), ...opts, '--', '/bin/sh', '-c', script]).status;
    expect(run('exit 3')).toBe(3);
    // Pid 1 of a pid namespace ignores its own SIGKILL: under the subreaper alone the server can kill itself ...
    expect(run('kill -9 $$', '--no-pidns')).toBe(137);
    // ... in its namespace, SIGKILL comes from outside (here, from the gateway's side).
    const reaper = spawn(reaperPath() ?? '', ['--parent', String(process.pid), '--', '/bin/sh', '-c', 'exec sleep 30'], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => reaper.once('exit', (code) => r(code)));
    const server = await until(() => childrenOf(reaper.pid ?? -1)[0], 'the server');
    process.kill(server, 'SIGKILL');
    expect(await exited).toBe(137);
  });

  it.skipIf(!pidnsAvailable())('runs the server as pid 1 of a pid namespace of its own: getppid() is 0, setsid() does not leave it', () => {
    const script = 'echo $$ $PPID; readlink /proc/self/ns/pid; setsid sh -c \'readlink /proc/self/ns/pid\'';
    const r = spawnSync(reaperPath() ?? '', ['--parent', String(process.pid), '--', '/bin/sh', '-c', script], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const [ids, ns, setsidNs] = r.stdout.trim().split('\n');
    expect(ids).toBe('1 0');
    expect(ns).toMatch(/^pid:\[\d+\]$/);
    expect(ns).not.toBe(readlinkSync('/proc/self/ns/pid'));
    expect(setsidNs).toBe(ns);
  });

  it('--no-pidns (the fallback when unshare fails): the server runs in the gateway\'s pid namespace, and the reaper says so once on stderr', () => {
    const r = spawnSync(reaperPath() ?? '', ['--parent', String(process.pid), '--no-pidns', '--', '/bin/sh', '-c', 'readlink /proc/self/ns/pid'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(readlinkSync('/proc/self/ns/pid'));
    expect(r.stderr.match(/gatehouse-reaper: warning: .*subreaper/g)).toHaveLength(1);
  });
});

/** Pids whose parent (in /proc) is `pid`. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1] === String(pid)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Whether the reaper gets its pid namespace here (user namespaces allowed); otherwise it warns and falls back. */
function pidnsAvailable(): boolean {
  const path = reaperPath();
  if (path === undefined) return false;
  const r = spawnSync(path, ['--parent', String(process.pid), '--', '/bin/true'], { encoding: 'utf8' });
  return r.status === 0 && !r.stderr.includes('no pid namespace');
}
