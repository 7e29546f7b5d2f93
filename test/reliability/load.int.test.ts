/**
 * Load: many concurrent MCP sessions against real upstreams (a stdio child and
 * a Streamable HTTP server), allowed and denied calls mixed. The agents must
 * see no transport error; every call has exactly one audit record and the
 * chain verifies; afterwards no session, child process or socket is left and
 * the heap is back at its idle level. Stdio upstreams are shared, never
 * spawned per session.
 *
 * CI size: 20 sessions x 40 calls. GATEHOUSE_LOAD_FULL=1 runs the issue's
 * size, 100 sessions x 200 calls (20,000 calls), and prints the numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { readJsonLines, spawnHttpFixture, startTestGateway, tempDir, stdioFixture, until, type HttpFixture, type TestGateway } from '../helpers/gateway.js';
import { acceptedOn, agentClient, auditRecords, descendants, errCode, LOAD_FULL, settledHeap, socketInodes, text, verifyChain } from './helpers.js';

const SESSIONS = LOAD_FULL ? 100 : 20;
const CALLS = LOAD_FULL ? 200 : 40;
/** Calls per session of the warm-up round that sets the idle level (a tenth of the load). */
const WARMUP_CALLS = Math.max(8, CALLS / 10);

const POLICY = {
  version: 1,
  default: 'deny',
  rules: [
    // Conditional, so add stays listed (denied in every case would make it an unknown tool).
    { id: 'no-add', match: { tool: '*__add', args: { a: { min: -1e15 } } }, effect: 'deny', message: 'adding is not allowed under load' },
    { id: 'add-listed', match: { tool: '*__add' }, effect: 'allow' },
    { id: 'echo-ok', match: { tool: '*__echo' }, effect: 'allow' },
  ],
};

let t: TestGateway;
let web: HttpFixture;
let baseChildren: number[];
let webLog: string;

beforeAll(async () => {
  baseChildren = descendants().map((p) => p.pid);
  webLog = join(tempDir('gh-load-'), 'web-calls.jsonl');
  web = await spawnHttpFixture({ FIXTURE_CALL_LOG: webLog });
  t = await startTestGateway({
    connectors: (log) => [stdioFixture('st', log), { name: 'web', kind: 'http', url: web.url }],
    policy: POLICY,
  });
}, 60_000);

afterAll(async () => {
  await t?.close();
  await web?.close();
});

/** What call `i` of session `s` is, and what the agent must see. */
function plan(s: number, i: number): { name: string; args: Record<string, unknown>; key: string; allowed: boolean } {
  const key = `s${s}-c${i}`;
  switch (i % 4) {
    case 0:
    case 1:
      return { name: 'st__echo', args: { text: key }, key, allowed: true };
    case 2:
      return { name: 'web__echo', args: { text: key }, key, allowed: true };
    default:
      // Denied: the unique key travels in a number (add takes a and b).
      return { name: s % 2 ? 'st__add' : 'web__add', args: { a: s * 100_000 + i, b: 0.5 }, key: String(s * 100_000 + i), allowed: false };
  }
}

describe(`load: ${SESSIONS} concurrent sessions x ${CALLS} calls, stdio + HTTP upstreams, allowed and denied mixed`, () => {
  it('no transport error, one audit record per call, chain verifies, nothing leaks, stdio upstream shared', { timeout: LOAD_FULL ? 900_000 : 150_000 }, async () => {
    // The server itself, not the gatehouse-reaper it runs under (whose command line holds the same words).
    const stdioChildren = () => descendants().filter((p) => p.cmdline.includes('upstream.mjs stdio') && !p.cmdline.includes('gatehouse-reaper'));
    expect(stdioChildren()).toHaveLength(1);
    const stdioPid = stdioChildren()[0]?.pid;

    // Idle level: after a warm-up round at the same concurrency (pools, buffers and compiled code sized by
    // concurrency are caches, not leaks: further rounds were seen not to grow the heap), everything closed.
    const warm = await Promise.all(Array.from({ length: SESSIONS }, async (_, s) => agentClient(t.url, await t.mint(`warmup-${s}`))));
    await Promise.all(
      warm.map(async (w) => {
        for (let i = 0; i < WARMUP_CALLS; i += 4) {
          for (const n of ['st__echo', 'web__echo']) await w.client.callTool({ name: n, arguments: { text: 'warm' } });
          for (const n of ['st__add', 'web__add']) await w.client.callTool({ name: n, arguments: { a: -1, b: -1 } });
        }
      }),
    );
    await Promise.all(warm.map((w) => w.close()));
    await until(() => t.gw.sessions.size === 0, 'the warm-up sessions to close');
    await until(() => acceptedOn(t.port) === 0, 'warm-up connections to close');
    const idleHeap = await settledHeap();
    const idleSockets = socketInodes().size;
    const idleChildren = descendants().map((p) => p.pid).sort();
    const auditBefore = auditRecords(t.dirs.state).length;

    let transportErrors: unknown[] = [];
    const wrong: string[] = [];
    let peakSessions = 0;
    let peakStdio = 0;
    const sampler = setInterval(() => {
      peakSessions = Math.max(peakSessions, t.gw.sessions.size);
      peakStdio = Math.max(peakStdio, stdioChildren().length);
    }, 100);
    const latencies: number[] = [];
    const lag = monitorEventLoopDelay({ resolution: 20 });
    lag.enable();
    const started = performance.now();
    const clients = await Promise.all(Array.from({ length: SESSIONS }, async (_, s) => agentClient(t.url, await t.mint(`loader-${s}`), `loader-${s}`)));
    await Promise.all(
      clients.map(async (c, s) => {
        for (let i = 0; i < CALLS; i++) {
          const p = plan(s, i);
          const t0 = performance.now();
          try {
            const r = await c.client.callTool({ name: p.name, arguments: p.args });
            latencies.push(performance.now() - t0);
            if (p.allowed ? r.isError === true || text(r) !== p.key : errCode(r) !== 'POLICY_DENIED') wrong.push(`${p.key}: ${JSON.stringify(r).slice(0, 200)}`);
          } catch (e) {
            transportErrors.push(`${p.key} (${new Date().toISOString()}): ${String(e)} ${String((e as { cause?: unknown }).cause ?? '')}`);
          }
        }
      }),
    );
    const elapsed = performance.now() - started;
    lag.disable();
    await Promise.all(clients.map((c) => c.close()));
    clearInterval(sampler);
    transportErrors = transportErrors.slice(0, 5);

    // What the agents saw.
    expect(transportErrors).toEqual([]);
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(peakSessions).toBe(SESSIONS);
    // One stdio child for every session, the same one as before the load.
    expect(peakStdio).toBe(1);
    expect(stdioChildren().map((p) => p.pid)).toEqual([stdioPid]);

    // What the upstreams saw: every allowed call once, no denied call.
    const seen = new Map<string, number>();
    for (const l of [...t.calls(), ...readJsonLines(webLog)]) {
      if (l.tool !== 'echo') {
        expect(l).toBeUndefined(); // nothing else may be forwarded
        continue;
      }
      const k = String((l.args as { text: string }).text);
      if (k === 'warm') continue;
      seen.set(k, (seen.get(k) ?? 0) + 1);
      expect(l.mode === 'stdio' ? l.pid : stdioPid).toBe(stdioPid);
    }
    const allowedKeys = clients.flatMap((_, s) => Array.from({ length: CALLS }, (_, i) => plan(s, i)).filter((p) => p.allowed).map((p) => p.key));
    expect(seen.size).toBe(allowedKeys.length);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);

    // What the audit says: exactly one tools/call record per call, with the right decision.
    await until(() => auditRecords(t.dirs.state).slice(auditBefore).filter((r) => r.event === 'session.closed').length >= SESSIONS, 'session.closed records');
    const records = auditRecords(t.dirs.state).slice(auditBefore);
    const byKey = new Map<string, Array<Record<string, unknown>>>();
    for (const r of records.filter((r) => r.event === 'tools/call')) {
      const args = r.args as { text?: string; a?: number };
      const k = args.text ?? String(args.a);
      byKey.set(k, [...(byKey.get(k) ?? []), r]);
    }
    expect(byKey.size).toBe(SESSIONS * CALLS);
    for (let s = 0; s < SESSIONS; s++) {
      for (let i = 0; i < CALLS; i++) {
        const p = plan(s, i);
        const rs = byKey.get(p.key) ?? [];
        expect(rs, p.key).toHaveLength(1);
        expect(rs[0], p.key).toMatchObject(p.allowed ? { outcome: 'ok', decision: 'allow', rule: 'echo-ok', agent: `loader-${s}` } : { outcome: 'denied', decision: 'deny', rule: 'no-add' });
      }
    }
    expect(records.filter((r) => r.event === 'session.opened')).toHaveLength(SESSIONS);

    // Nothing left behind: sessions, children, sockets, heap.
    expect(t.gw.sessions.size).toBe(0);
    await until(() => acceptedOn(t.port) === 0, 'the gateway to close every agent connection');
    await until(() => socketInodes().size <= idleSockets + 2, `sockets back to idle (${idleSockets})`, 20_000);
    expect(descendants().map((p) => p.pid).sort()).toEqual(idleChildren);
    const heapAfter = await settledHeap();
    const grown = heapAfter - idleHeap;

    const verify = await verifyChain(t.dirs.state);
    expect(verify.problems).toEqual([]);
    expect(verify.signaturesChecked).toBe(true);

    const sorted = latencies.sort((a, b) => a - b);
    const pct = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]?.toFixed(1);
    console.log(
      `[load] ${SESSIONS} sessions x ${CALLS} calls = ${SESSIONS * CALLS} calls in ${(elapsed / 1000).toFixed(1)} s (${Math.round((SESSIONS * CALLS * 1000) / elapsed)} calls/s); ` +
        `latency p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${pct(1)} ms; audit records ${records.length}; ` +
        `heap idle ${(idleHeap / 2 ** 20).toFixed(1)} MiB -> after ${(heapAfter / 2 ** 20).toFixed(1)} MiB; sockets idle ${idleSockets} -> ${socketInodes().size}; ` +
        `children ${idleChildren.length}; base children ${baseChildren.length}; event-loop delay (gateway and agents share this process) p99 ${(lag.percentile(99) / 1e6).toFixed(0)} ms, max ${(lag.max / 1e6).toFixed(0)} ms`,
    );
    // Back at the idle level. What remains is code and pools warmed by volume: repeated rounds of 4,000 calls
    // were seen flat (within 0.5 MiB) after the second; a leak of 1 KiB per call or 100 KiB per session would break this.
    expect(grown).toBeLessThan((LOAD_FULL ? 16 : 8) * 2 ** 20);
  });
});
