/**
 * Hostile review of issue #24 (a hostile upstream can't hurt the gateway, the
 * audit or other agents): the holes a second reviewer found, each with the
 * test that now stops it. The last hole open (a stdio server that kills its
 * own reaper) is closed: gatehouse-reaper runs the server as pid 1 of a pid
 * namespace of its own, where the reaper has no pid.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { LoggingMessageNotificationSchema, type CallToolResult, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, spawnListening, startTestGateway, until, type HttpFixture, type TestGateway } from '../helpers/gateway.js';
import { innocentConnector, INNOCENT_P99_BOUND_MS, measureInnocent, resources } from '../helpers/innocent.js';
import { MAX_HTTP_CONNECTIONS } from '../../src/upstreams/upstream.js';
import { FIXTURES, settledHeap } from './helpers.js';

const HOSTILE = join(FIXTURES, 'review-24-http.mjs');
const HOSTILE_STDIO = join(FIXTURES, 'review-24-stdio.mjs');

let fx: HttpFixture;
let t: TestGateway;
let alice: Client;
const logs: Array<Record<string, unknown>> = [];

interface Stats {
  held: number;
  answers: number;
  conns: number;
}
/** An agent process: `node -e CAROL PORT TOKEN` waits 1.5 s, sends initialize, prints the HTTP status or the error. */
const CAROL = `
const http = require('node:http');
const [port, token] = process.argv.slice(1);
setTimeout(() => {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'carol', version: '1' } } });
  const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/mcp', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: 'Bearer ' + token } }, (res) => {
    res.resume();
    res.on('end', () => { console.log(res.statusCode); process.exit(0); });
  });
  req.setTimeout(5000, () => { console.log('timeout'); process.exit(0); });
  req.on('error', (e) => { console.log(e.code || e.message); process.exit(0); });
  req.end(body);
}, 1500);
`;
const stats = async () => (await (await fetch(`http://127.0.0.1:${fx.port}/stats`)).json()) as Stats;
const release = async () => (await fetch(`http://127.0.0.1:${fx.port}/release`)).json();
const status = (name: string) => t.gw.gateway.report().find((r) => r.name === name)?.status as { state: string } | undefined;
const text = (r: unknown) => ((r as CallToolResult).content as Array<{ text?: string }>)[0]?.text ?? '';

beforeAll(async () => {
  fx = await spawnListening(HOSTILE, ['0']);
  t = await startTestGateway({
    connectors: (log) => [innocentConnector(log),
      // An answer the upstream never acknowledges is given up after the connect timeout.
      { name: 'evil', kind: 'http', url: fx.url, timeouts: { call: '20s', connect: '2s' } },
      { name: 'evilio', kind: 'stdio', command: 'node', args: [HOSTILE_STDIO], timeouts: { call: '5s' } },
    ],
  });
  for (const c of ['innocent', 'evil', 'evilio']) await until(() => status(c)?.state === 'ready', `${c} to be ready`, 20_000);
  alice = await t.client('alice');
  alice.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params as Record<string, unknown>));
});

afterAll(async () => {
  await release().catch(() => undefined);
  await t?.close();
  await fx?.close();
});

describe('review #24: server-to-client requests the gateway must answer', () => {
  it(
    'ping flood with answers held open: at most MAX_HTTP_CONNECTIONS sockets to the upstream, each answer given up after the connect timeout',
    async () => {
      const fds0 = resources().fds;
      const n = 300;
      const r = (await alice.callTool({ name: 'evil__pingflood', arguments: { n, resultAfterMs: 500 } })) as CallToolResult;
      expect(text(r)).toBe(`pinged ${n}`);
      const s = await until(async () => {
        const x = await stats();
        return x.answers >= n ? x : undefined;
      }, 'the answers to arrive', 5_000).catch(async () => stats());
      const fdsGrowth = resources().fds - fds0;
      try {
        expect(s.held, `${s.held} answers to pings held open upstream, ${s.conns} connections, gateway fds +${fdsGrowth}`).toBeLessThanOrEqual(MAX_HTTP_CONNECTIONS);
        expect(fdsGrowth).toBeLessThanOrEqual(MAX_HTTP_CONNECTIONS + 8);
        // Not released by the upstream: the gateway gives the held answers up itself (connect timeout, 2 s here);
        // what stays is its pool of idle keep-alive connections, never more than MAX_HTTP_CONNECTIONS.
        await until(async () => (await stats()).held === 0 || undefined, 'the held answers to be given up', 15_000);
        expect(resources().fds - fds0).toBeLessThanOrEqual(MAX_HTTP_CONNECTIONS + 8);
      } finally {
        await release();
      }
    },
    30_000,
  );
  it(
    'ping flood up to the fd limit: a new agent can still connect and call (the upstream holds at most MAX_HTTP_CONNECTIONS of the gateway\'s fds)',
    async () => {
      // The gateway runs in this process: its fd limit lowered to what it uses plus 300, as if 20,000 pings (1.2 MB of SSE) met the default 20,000.
      const fds0 = resources().fds;
      const limit0 = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? '20000';
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${fds0 + 300}:`]);
      // Carol comes from outside (her own process, started before the flood, so it needs no fd of ours to start):
      // 1.5 s in she opens an MCP session on the gateway and says what she got.
      const token = await t.mint('carol');
      const carol = spawn(process.execPath, ['-e', CAROL, String(t.port), token], { stdio: ['ignore', 'pipe', 'ignore'] });
      let said = '';
      carol.stdout.on('data', (c: Buffer) => (said += c.toString('utf8')));
      const carolDone = new Promise<void>((r) => carol.once('exit', () => r()));
      let outcome: string;
      try {
        // The fixture lets the held answers go after 8 s (nothing here could ask it to: no fd is left for a request).
        await alice.callTool({ name: 'evil__pingflood', arguments: { n: Number(process.env.REVIEW24_PINGS ?? 400), resultAfterMs: 500, releaseAfterMs: 8_000 } }).catch(() => undefined);
        await carolDone;
        outcome = said.trim();
      } finally {
        // Even listing /proc/self/fd needs an fd: poll until it works and shows the held sockets gone.
        const fdsNow = () => {
          try {
            return resources().fds;
          } catch {
            return Number.POSITIVE_INFINITY;
          }
        };
        await until(() => fdsNow() < fds0 + 250, 'the held answers to be let go', 20_000).catch(() => undefined);
        execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${limit0}:`]);
      }
      expect(outcome).toBe('200');
    },
    40_000,
  );
});

describe('review #24: a stdio server that stops reading its stdin', () => {
  it(
    'ping flood while not reading stdin, then exit: the answers wait on one shared drain (was one listener each, removed one by one: O(n²), seconds of stall), bounded in bytes and count',
    async () => {
      const heap0 = await settledHeap();
      const n = Number(process.env.REVIEW24_STDIO_PINGS ?? 20_000);
      // The event loop's longest stall while the attack runs (what every other agent waits).
      let maxLag = 0;
      let last = performance.now();
      const probe = setInterval(() => {
        const now = performance.now();
        maxLag = Math.max(maxLag, now - last - 10);
        last = now;
      }, 10);
      const t0 = performance.now();
      let r: CallToolResult;
      let heap1: number;
      try {
        r = (await alice.callTool({ name: 'evilio__pingflood', arguments: { n } })) as CallToolResult;
        heap1 = await settledHeap();
      } finally {
        clearInterval(probe);
      }
      console.log(`review-24: ${n} pings: heap ${Math.round(heap0 / 2 ** 20)} -> ${Math.round(heap1 / 2 ** 20)} MiB, call ${Math.round(performance.now() - t0)} ms, longest event-loop stall ${Math.round(maxLag)} ms`);
      expect(r.isError).toBe(true);
      // What should hold: no stall an innocent agent would feel.
      expect(maxLag).toBeLessThan(INNOCENT_P99_BOUND_MS);
    },
    60_000,
  );
});

describe('review #24: the reaper', () => {
  it('a server that tries to SIGKILL its reaper (getppid(), its /proc pid, its process group), then exits: it cannot (pid 1 of its own pid namespace), and its setsid() grandchild dies with it', async () => {
    const r = (await alice.callTool({ name: 'evilio__escape', arguments: {} })) as CallToolResult;
    const { pid, parent } = JSON.parse(text(r)) as { pid: number; parent: string };
    expect(parent).toBe('gatehouse-reape'); // comm is cut at 15 characters
    try {
      // The connector sees its child (the reaper) die and restarts.
      await until(() => status('evilio')?.state !== 'ready', 'evilio to notice', 5_000).catch(() => undefined);
      await until(() => status('evilio')?.state === 'ready', 'evilio to be back', 20_000);
      await new Promise((res) => setTimeout(res, 1_500));
      expect(isAlive(pid), `the server's setsid grandchild ${pid} is still running`).toBe(false);
    } finally {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }, 30_000);
});

describe('review #24: size of what reaches the agent per notification', () => {
  it('a log message whose `logger` name is 1 MiB: the agent gets it cut (the whole message bounded, unknown fields dropped)', async () => {
    logs.length = 0;
    const r = (await alice.callTool({ name: 'evil__bigfields', arguments: { loggerBytes: 1024 * 1024, dataBytes: 64 * 1024 } })) as CallToolResult;
    expect(text(r)).toBe('fields sent');
    const got = await until(() => logs.find((l) => String(l.logger ?? '').startsWith('LLL')), 'the log message', 5_000);
    // data was cut (the claimed bound) ...
    expect(String(got.data).length).toBeLessThan(20 * 1024);
    // ... and the whole message is.
    expect(JSON.stringify(got).length).toBeLessThan(20 * 1024);
    expect(String(got.logger).length).toBeLessThanOrEqual(201);
  });

  it('a progress notification with a 4 MiB `message`: the agent gets it cut to 1 KiB with its size noted', async () => {
    const seen: Progress[] = [];
    const r = (await alice.callTool({ name: 'evil__bigfields', arguments: { progressBytes: 4 * 1024 * 1024 } }, undefined, { onprogress: (p) => void seen.push(p) })) as CallToolResult;
    expect(text(r)).toBe('fields sent');
    expect(seen.length).toBe(1);
    expect(String(seen[0]?.message ?? '')).toMatch(/^P{1024}… \(cut by Gatehouse, 4194304 characters\)$/);
  });
});

describe('review #24: held defences', () => {
  it('the innocent agent stays fast during a ping flood (latency holds even though sockets pile up)', async () => {
    const m = await measureInnocent(t, async () => {
      const r = await alice.callTool({ name: 'evil__pingflood', arguments: { n: 200, resultAfterMs: 300 } });
      await release();
      return r;
    });
    expect(m.errors).toEqual([]);
    expect(m.p99).toBeLessThan(INNOCENT_P99_BOUND_MS);
  }, 30_000);
});
