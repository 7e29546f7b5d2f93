/**
 * Audit faults through the real gateway (test/audit/ covers the writer and the
 * pipeline alone; this is the whole gateway over HTTP, under load):
 *   - the audit disk fills up: calls are refused with a clear reason, no call
 *     that an agent saw succeed or an upstream executed is missing from the
 *     log, and calls are accepted again once there is space;
 *   - the agent fills the disk the state is on, with a headroom: calls in
 *     flight still complete and are recorded, new calls are refused;
 *   - `gatehouse serve` SIGKILLed under load and restarted on the same state:
 *     no delivered call without a record, no call the upstream ran without
 *     an intent record, the chain verifies, no orphan child.
 */
import { mkdirSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { startGateway } from '../../src/app/gateway.js';
import { loadTokenKeys, mintToken } from '../../src/server/tokens.js';
import { startServe } from '../helpers/cli.js';
import { isAlive, readJsonLines, stdioFixture, tempDir, until, writeConfig } from '../helpers/gateway.js';
import { fill, tinyTmpfs, unmountTmpfs } from '../helpers/tmpfs.js';
import { agentClient, auditRecords, descendants, text, verifyChain, type AgentClient } from './helpers.js';

const cleanup: string[] = [];
afterAll(() => {
  unmountTmpfs();
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('audit disk full, through the gateway under load', () => {
  it('calls are refused with the reason; nothing an agent or an upstream saw goes unaudited; calls resume when space is back', { timeout: 90_000 }, async () => {
    const root = tempDir('gh-rel-diskfull-');
    cleanup.push(root);
    const callLog = join(root, 'calls.jsonl'); // on the real disk: the upstream's view survives the full audit disk
    const dirs = { ...writeConfig(root, [stdioFixture('fx', callLog)]), state: tinyTmpfs(1024) };
    const gw = await startGateway({ dirs, port: 0, logger: silentLogger, backoffMs: 20, upstreamWaitMs: 20_000, audit: { retryMs: 100, headroomBytes: 0 } }); // no headroom: the log's own fail-closed path
    const clients: AgentClient[] = [];
    try {
      const token = (await mintToken(gw.keys, 'filler', 3_600_000)).token;
      for (let i = 0; i < 4; i++) clients.push(await agentClient(gw.url, token));
      const delivered = new Set<string>();
      const refusals: string[] = [];
      let stop = false;
      const load = clients.map(async (c, ci) => {
        for (let i = 0; !stop; i++) {
          const key = `c${ci}-${i}`;
          try {
            const r = await c.client.callTool({ name: 'fx__echo', arguments: { text: key } });
            if (r.isError !== true && text(r) === key) delivered.add(key);
          } catch (e) {
            refusals.push(String((e as Error).message));
            await new Promise((r) => setTimeout(r, 10));
          }
        }
      });
      await until(() => delivered.size >= 40, 'calls before the disk fills');
      const filler = fill(dirs.state);
      await until(() => refusals.length >= 20, 'calls to be refused', 20_000);
      const refusedWhileFull = delivered.size;
      await new Promise((r) => setTimeout(r, 300));
      unlinkSync(filler);
      await until(() => delivered.size >= refusedWhileFull + 40, 'calls to resume', 20_000);
      stop = true;
      await Promise.all(load);

      // What the agent saw: a JSON-RPC error that names the audit log and the cause.
      expect(refusals[0]).toMatch(/audit log cannot be written \(ENOSPC.*calls are refused/);
      expect(new Set(refusals.map((m) => m.replace(/c\d+-\d+/, ''))).size).toBeLessThanOrEqual(3);

      // What the audit says: every delivered call, and every call the upstream executed, has its record.
      await Promise.all(clients.map((c) => c.close()));
      await gw.close(2_000);
      const records = auditRecords(dirs.state).filter((r) => r.event === 'tools/call');
      const audited = new Set(records.map((r) => (r.args as { text: string }).text));
      expect([...delivered].filter((k) => !audited.has(k))).toEqual([]);
      const executed = readJsonLines(callLog).map((l) => String((l.args as { text: string }).text));
      const unaudited = executed.filter((k) => !audited.has(k));
      expect(unaudited, 'executed upstream but not in the audit log').toEqual([]);
      // Calls that ran upstream while the log was failing: recorded late, marked as not delivered to the agent.
      const late = records.filter((r) => r.delivered === false);
      for (const r of late) expect(delivered.has((r.args as { text: string }).text)).toBe(false);
      expect(late.every((r) => String((r.late as { reason: string }).reason).includes('ENOSPC'))).toBe(true);
      const recovered = auditRecords(dirs.state).filter((r) => r.event === 'audit.recovered');
      expect(recovered.at(-1)).toMatchObject({ reason: 'write-failed', error: { code: 'ENOSPC' } });
      expect((await verifyChain(dirs.state)).problems).toEqual([]);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await gw.close(1_000);
    }
  });
});

describe.skipIf(!isRoot)('audit disk headroom, through the gateway', () => {
  it('agent fills the disk the state directory is on: slow calls in flight still get their results and records; new calls are refused with the headroom error; accepted again when space is back', { timeout: 90_000 }, async () => {
    const root = tempDir('gh-rel-headroom-');
    cleanup.push(root);
    const callLog = join(root, 'calls.jsonl');
    const disk = tinyTmpfs(4096);
    const workspace = join(disk, 'workspace');
    mkdirSync(workspace);
    const dirs = { ...writeConfig(root, [stdioFixture('fx', callLog)]), state: join(disk, 'state') };
    const HEADROOM = 512 * 1024;
    const gw = await startGateway({ dirs, port: 0, logger: silentLogger, backoffMs: 20, upstreamWaitMs: 20_000, audit: { headroomBytes: HEADROOM, spaceCheckMs: 50 } });
    const token = (await mintToken(gw.keys, 'filler', 3_600_000)).token;
    const agent = await agentClient(gw.url, token);
    try {
      const slow = Array.from({ length: 6 }, (_, i) => agent.client.callTool({ name: 'fx__slow', arguments: { ms: 3_000 + i } }, undefined, { timeout: 30_000 }));
      await until(() => readJsonLines(callLog).filter((c) => c.tool === 'slow').length === 6, 'the slow calls to reach the upstream');
      const filler = fill(workspace);
      // The next free-space look-up has seen the fill (the event, however late its timer runs).
      await until(() => {
        try {
          gw.audit.assertWritable();
          return false;
        } catch {
          return true;
        }
      }, 'the free-space look-up to see the fill', 20_000);
      const refused = await agent.client.callTool({ name: 'fx__echo', arguments: { text: 'after the fill' } }).then(
        () => 'accepted',
        (e: unknown) => String((e as Error).message),
      );
      expect(refused).toMatch(/audit disk headroom below 0\.50 MiB on .*; free space 0\.\d+ MiB: new calls are refused/);
      expect(readJsonLines(callLog).some((c) => (c.args as { text?: string }).text === 'after the fill')).toBe(false);
      const results = await Promise.all(slow);
      expect(results.map((r) => r.isError === true)).toEqual(Array(6).fill(false));

      unlinkSync(filler);
      await until(async () => {
        const r = await agent.client.callTool({ name: 'fx__echo', arguments: { text: 'back' } }).catch(() => undefined);
        return r !== undefined && r.isError !== true;
      }, 'calls to be accepted again', 10_000);
    } finally {
      await agent.close();
      await gw.close(2_000);
    }
    const records = auditRecords(dirs.state);
    const outcomes = records.filter((r) => r.event === 'tools/call' && r.tool === 'fx__slow');
    expect(outcomes.map((r) => r.outcome)).toEqual(Array(6).fill('ok'));
    expect(outcomes.some((r) => r.delivered === false)).toBe(false);
    expect(records.filter((r) => r.event === 'audit.headroom').map((r) => r.state)).toEqual(['low', 'ok']);
    expect((await verifyChain(dirs.state)).problems).toEqual([]);
  });
});

describe('gatehouse serve SIGKILLed under load, then restarted', () => {
  const serve = (root: string, dirs: { registry: string; policies: string; state: string }) =>
    startServe(['--registry', dirs.registry, '--policies', dirs.policies], { HOME: root, GATEHOUSE_STATE: dirs.state, GATEHOUSE_LOG_LEVEL: 'error' });

  it('every call an agent got a result for has its record; the restarted gateway continues the chain; the stdio child does not outlive it', { timeout: 120_000 }, async () => {
    const root = tempDir('gh-rel-kill-');
    cleanup.push(root);
    const callLog = join(root, 'calls.jsonl');
    const dirs = writeConfig(root, [stdioFixture('fx', callLog)]);
    for (let round = 0; round < 2; round++) {
      const { child, url } = await serve(root, dirs);
      const keys = await loadTokenKeys(dirs.state);
      const token = (await mintToken(keys, 'victim', 3_600_000)).token;
      const clients = await Promise.all(Array.from({ length: 8 }, () => agentClient(url, token)));
      await until(() => descendants(child.pid).some((p) => p.cmdline.includes('upstream.mjs')), 'the stdio child');
      const upstreamPids = descendants(child.pid).map((p) => p.pid);
      const delivered = new Set<string>();
      const failures: string[] = [];
      let killed = false;
      const deadline = Date.now() + 60_000;
      const load = clients.map(async (c, ci) => {
        for (let i = 0; !killed && Date.now() < deadline; i++) {
          const key = `r${round}-c${ci}-${i}`;
          // A call cut by the kill would wait for the SDK's default 60 s request timeout: keep it short.
          const r = await c.client.callTool({ name: 'fx__echo', arguments: { text: key } }, undefined, { timeout: 5_000 }).catch((e: unknown) => void (killed || failures.push(String(e))));
          if (r && r.isError !== true && text(r) === key) delivered.add(key);
          if (delivered.size >= 400 && !killed) {
            killed = true;
            child.kill('SIGKILL');
          }
        }
      });
      await Promise.all(load);
      expect(failures.slice(0, 3)).toEqual([]);
      await new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
      expect(child.signalCode).toBe('SIGKILL');
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      // The stdio child sees its stdin close and exits: no orphan.
      await until(() => upstreamPids.every((p) => !isAlive(p)), 'the orphaned stdio child to exit', 10_000);

      // Restart on the same state: the writer lock and control socket of the dead gateway are stale, not in use.
      const again = await serve(root, dirs);
      again.child.kill('SIGTERM');
      await new Promise((r) => again.child.once('exit', r));

      const records = auditRecords(dirs.state);
      const audited = new Set(records.filter((r) => r.event === 'tools/call' && r.outcome === 'ok').map((r) => (r.args as { text: string }).text));
      expect([...delivered].filter((k) => !audited.has(k))).toEqual([]);
      expect(delivered.size).toBeGreaterThanOrEqual(400);
      // Every call the upstream ran, even one cut by the kill, has its intent on disk (written before forwarding).
      const traced = new Set(records.filter((r) => r.event === 'tools/call.intent').map((r) => (r.args as { text?: string } | undefined)?.text));
      const executed = readJsonLines(callLog).filter((l) => l.event === 'call' && String((l.args as { text?: string }).text).startsWith(`r${round}-`));
      expect(executed.length).toBeGreaterThanOrEqual(400);
      expect(executed.map((l) => String((l.args as { text: string }).text)).filter((k) => !traced.has(k)), 'ran upstream with no intent record').toEqual([]);
      const report = await verifyChain(dirs.state);
      expect(report.problems).toEqual([]);
      expect(records.filter((r) => r.event === 'gateway.start')).toHaveLength(2 * round + 2);
    }
  });
});
