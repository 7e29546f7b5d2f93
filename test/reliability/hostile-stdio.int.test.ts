/**
 * A hostile stdio MCP server (test/fixtures/hostile-stdio.mjs) attacks the
 * gateway through its pipes and its process tree (issue #24): each attack runs
 * while an innocent agent on an innocent connector measures its own latency;
 * afterwards the gateway's RSS and fds are back near their baseline, and once
 * the gateway stops no process of the hostile server is left.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { reaperPath } from '../../src/upstreams/stdio.js';
import { isAlive, startTestGateway, until, type TestGateway } from '../helpers/gateway.js';
import { INNOCENT_P99_BOUND_MS, innocentConnector, measureInnocent, resources, settled, type InnocentMeasure } from '../helpers/innocent.js';
import { FIXTURES } from './helpers.js';

const HOSTILE = join(FIXTURES, 'hostile-stdio.mjs');
const MARKER = `hostile-stdio-marker-${process.pid}-${Date.now()}`;
const RESULT_LIMIT = 1024 * 1024;
const STDERR_LIMIT = 16 * 1024;

/** Pids whose command line holds the marker (the hostile server, its reaper, everything it started). */
function markedPids(marker = MARKER): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      const state = readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]?.[0];
      if (cmd.includes(marker) && state !== 'Z') out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Every log line the gateway wrote, parsed (the logger is the real one, over a counting stream). */
const logLines: string[] = [];
let logBytes = 0;
const logger = createLogger({
  level: 'info',
  destination: new Writable({
    write(chunk: Buffer, _enc, cb) {
      logBytes += chunk.length;
      logLines.push(chunk.toString('utf8'));
      cb();
    },
  }),
});
const records = () => logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.connector === 'evil');

async function outcome(client: Client, name: string, args: Record<string, unknown> = {}): Promise<{ isError: boolean; text: string }> {
  const r = await client.callTool({ name, arguments: args });
  return { isError: r.isError === true, text: (r.content as Array<{ text?: string }>)[0]?.text ?? '' };
}

function expectInnocentUnharmed(m: InnocentMeasure): void {
  expect(m.errors).toEqual([]);
  expect(m.samples.length).toBeGreaterThan(5);
  expect(m.p99).toBeLessThan(INNOCENT_P99_BOUND_MS);
}

describe.skipIf(process.platform !== 'linux')('a hostile stdio upstream cannot hurt the gateway or another agent', () => {
  let t: TestGateway;
  let agent: Client;
  let evilPid = 0;

  beforeAll(async () => {
    t = await startTestGateway({
      connectors: (log) => [
        innocentConnector(log),
        { name: 'evil', kind: 'stdio', command: 'node', args: [HOSTILE, 'stdio', MARKER], limits: { resultBytes: RESULT_LIMIT, stderrBytesPerSecond: STDERR_LIMIT }, timeouts: { call: '4s' } },
      ],
      runtime: { logger },
    });
    agent = await t.client('mallory');
    evilPid = Number((await outcome(agent, 'evil__pid')).text);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the suite runs the hostile server under the reaper (built by make -C native)', () => {
    expect(reaperPath()).toBeDefined();
    expect(evilPid).toBeGreaterThan(0);
  });

  it('server exits while a grandchild holds its stdout: the connector restarts instead of staying "ready" with every call timing out; the grandchild is killed', async () => {
    const base = resources();
    const m = await measureInnocent(t, async () => {
      const r = await outcome(agent, 'evil__exit_holding_stdout');
      const { server, grandchild } = JSON.parse(r.text) as { server: number; grandchild: number };
      expect(isAlive(grandchild) || !isAlive(server)).toBe(true);
      // The next call reaches a new server (the old one's exit was seen, though its stdout stayed open).
      const next = await until(async () => {
        const p = await outcome(agent, 'evil__pid');
        return !p.isError && Number(p.text) !== server ? Number(p.text) : undefined;
      }, 'a restarted server answering', 8_000);
      expect(next).not.toBe(server);
      await until(() => !isAlive(grandchild), 'the grandchild holding stdout killed', 3_000);
      return next;
    });
    expectInnocentUnharmed(m);
    evilPid = m.result;
    await settled(base);
  });

  it('a server that forks detached children (in its group, setsid, double fork): none outlives a restart', async () => {
    const base = resources();
    const m = await measureInnocent(t, async () => {
      const r = await outcome(agent, 'evil__fork_children');
      const kids = JSON.parse(r.text) as { server: number; inGroup: number; setsid: number; orphan: number };
      for (const pid of [kids.inGroup, kids.setsid, kids.orphan]) expect(isAlive(pid)).toBe(true);
      const up = (t.gw.gateway as unknown as { upstreams: Map<string, { restart(): Promise<void> }> }).upstreams.get('evil');
      await up?.restart();
      await until(() => [kids.server, kids.inGroup, kids.setsid, kids.orphan].every((p) => !isAlive(p)), 'every process of the old server gone', 5_000);
      return kids;
    });
    expectInnocentUnharmed(m);
    evilPid = Number((await outcome(agent, 'evil__pid')).text);
    await settled(base);
  });

  it('a 64 MiB and a 192 MiB result line: discarded as they stream, each call fails naming the size and the limit, gateway memory does not grow with them', async () => {
    const sizes = { first: 64 * 1024 * 1024, last: 192 * 1024 * 1024 };
    const base = resources();
    let peakRss = base.rss;
    const sample = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 10);
    try {
      const m = await measureInnocent(t, async () => {
        // The id as the first key, then as the last (the SDK's own order).
        const first = await outcome(agent, 'evil__huge_result', { bytes: sizes.first, id: 'first' });
        const last = await outcome(agent, 'evil__huge_result', { bytes: sizes.last, id: 'last' });
        return { first, last };
      });
      expectInnocentUnharmed(m);
      for (const [where, r] of Object.entries(m.result)) {
        expect(r.isError).toBe(true);
        expect(r.text).toBe(`connector "evil" answered with an error: its answer is ${sizes[where as keyof typeof sizes]} bytes, over the limit of ${RESULT_LIMIT} bytes (limits.resultBytes); the gateway discarded it`);
      }
    } finally {
      clearInterval(sample);
    }
    // Never held: the peak (64 KiB pipe reads not yet collected) stays far below the larger line.
    expect(peakRss - base.rss).toBeLessThan(sizes.last / 2);
    const audited = t.audit().filter((r) => r.tool === 'evil__huge_result' && r.event === 'tools/call' && typeof r.call === 'string' && r.outcome === 'error');
    expect(audited.map((r) => JSON.stringify(r.error))).toEqual([expect.stringContaining(`${sizes.first} bytes`), expect.stringContaining(`${sizes.last} bytes`)]);
    // The connector is still up (same process), and answers normally.
    expect(Number((await outcome(agent, 'evil__pid')).text)).toBe(evilPid);
    await settled(base);
  });

  it('an oversized line whose id is neither its first nor its last key: discarded; that call times out (documented), the connector stays up', async () => {
    const r = await outcome(agent, 'evil__huge_result', { bytes: 4 * RESULT_LIMIT, id: 'middle' });
    expect(r.isError).toBe(true);
    expect(r.text).toContain('did not answer within 4000 ms');
    expect(records().some((x) => x.msg === 'upstream sent a message over its size limit (limits.resultBytes); discarded (no id at either end: its call will time out)' && x.bytes === 4 * RESULT_LIMIT)).toBe(true);
    expect(Number((await outcome(agent, 'evil__pid')).text)).toBe(evilPid);
  });

  it('a flood on stderr (64 MiB in 100-byte lines, then one 16 MiB line): at most limits.stderrBytesPerSecond reaches the log, the rest is counted; the child is never blocked', async () => {
    const base = resources();
    const before = logLines.length;
    const started = performance.now();
    const m = await measureInnocent(t, async () => {
      const lines = await outcome(agent, 'evil__stderr_flood', { bytes: 64 * 1024 * 1024, line: 100 });
      const one = await outcome(agent, 'evil__stderr_flood', { bytes: 16 * 1024 * 1024, line: 0 });
      return { lines, one };
    });
    const seconds = (performance.now() - started) / 1000;
    expectInnocentUnharmed(m);
    expect(m.result.lines.isError).toBe(false);
    expect(m.result.one.isError).toBe(false);
    // Wait for the last drop report (once a second).
    await new Promise((r) => setTimeout(r, 1_200));
    const mine = logLines.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>);
    const stderrLogged = mine.filter((r) => r.msg === 'upstream stderr').reduce((n, r) => n + Buffer.byteLength(String(r.stderr)) + 1, 0);
    const dropped = mine.filter((r) => r.msg === 'upstream output over its log limit (limits.stderrBytesPerSecond); dropped').reduce((n, r) => n + Number(r.droppedBytes), 0);
    // One second of burst plus the rate over the attack.
    expect(stderrLogged).toBeLessThanOrEqual(STDERR_LIMIT * (seconds + 2));
    expect(stderrLogged + dropped).toBeGreaterThanOrEqual(80 * 1024 * 1024 - 4096);
    expect(dropped).toBeGreaterThan(79 * 1024 * 1024);
    // One report line per second at most, not one per dropped line.
    expect(mine.filter((r) => r.msg === 'upstream output over its log limit (limits.stderrBytesPerSecond); dropped').length).toBeLessThanOrEqual(Math.ceil(seconds) + 2);
    const logged = logLines.slice(before).reduce((n, l) => n + Buffer.byteLength(l), 0);
    expect(logged).toBeLessThan(2 * STDERR_LIMIT * (seconds + 2) + 64 * 1024);
    await settled(base);
  });

  it('escape sequences and non-JSON on stdout and stderr: nothing crashes, every line is logged escaped', async () => {
    const before = logLines.length;
    const m = await measureInnocent(t, () => outcome(agent, 'evil__garbage'), { minMs: 500 });
    expectInnocentUnharmed(m);
    expect(m.result).toEqual({ isError: false, text: 'garbage sent' });
    await until(() => logLines.slice(before).some((l) => l.includes('jsonrpc\\":\\"1.0')), 'the last garbage line logged', 3_000);
    const mine = logLines.slice(before).join('');
    expect(mine).not.toMatch(/[\x1b\x07\u009b\u202e]/);
    expect(mine).toContain('\\\\x1b]0;forged terminal title\\\\x07');
    expect(mine).toContain('\\\\x9b31mC1 CSI\\\\u202eevil bidi');
    expect(Number((await outcome(agent, 'evil__pid')).text)).toBe(evilPid);
  });

  it('the gateway stops: no process of the hostile server is left', async () => {
    expect(markedPids().length).toBeGreaterThan(0);
    await t.close();
    await until(() => markedPids().length === 0 || undefined, `no process with ${MARKER} in its command line (left: ${markedPids().join(', ')})`, 5_000);
  });
});
