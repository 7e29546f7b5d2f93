/**
 * The audit's disk headroom: a workspace on the same filesystem as the state
 * directory is filled by the agent. Calls already forwarded still get their
 * outcome record (written into space preallocated past the end of the log,
 * which the filler cannot take); new calls are refused with a clear reason;
 * when space returns, the reserve is made again and calls are accepted.
 */
import { mkdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { queryAudit } from '../../src/audit/query.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { handleToolCall } from '../../src/broker/pipeline.js';
import { until } from '../helpers/gateway.js';
import { fill, tinyTmpfs, unmountTmpfs } from '../helpers/tmpfs.js';
import { openLog } from './helpers.js';
import { echoDeps } from './pipeline-deps.js';

afterAll(unmountTmpfs);

const isRoot = process.getuid?.() === 0;
const KiB = 1024;
const HEADROOM = 256 * KiB;
const IN_FLIGHT = 24;

/** A state directory and an agent workspace on one small real filesystem. */
function sharedDisk(): { mount: string; dir: string; workspace: string } {
  const mount = tinyTmpfs(2048);
  const workspace = join(mount, 'workspace');
  mkdirSync(workspace);
  return { mount, dir: join(mount, 'state', 'audit'), workspace };
}

/** Records of ~3 KiB each (strings are kept up to 1 KiB each). */
const bigArgs = (i: number) => ({ i, a: 'a'.repeat(1000), b: 'b'.repeat(1000), c: 'c'.repeat(1000) });

async function startCalls(dir: string, headroomBytes: number) {
  const log = await openLog(dir, { headroomBytes, spaceCheckMs: 0, retryMs: 50 });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let reached = 0;
  const deps = echoDeps(log, async () => {
    reached++;
    await gate;
  });
  const call = (i: number) => handleToolCall(deps, { agent: 'agent', session: 's', name: 'demo__echo', args: bigArgs(i), signal: new AbortController().signal });
  const calls = Array.from({ length: IN_FLIGHT }, (_, i) => call(i).then(
    (r) => ({ ok: r.isError !== true }),
    (e: unknown) => ({ ok: false, error: e as Error }),
  ));
  await until(() => reached === IN_FLIGHT, 'every call to reach the upstream');
  return { log, call, calls, release, reached: () => reached };
}

describe.skipIf(!isRoot)('audit disk headroom (a real tmpfs shared by the state directory and the workspace)', () => {
  it('agent fills the shared disk: calls in flight still get their outcome record and new calls are refused with the headroom error; accepted again when space returns', { timeout: 60_000 }, async () => {
    const { mount, dir, workspace } = sharedDisk();
    const run = await startCalls(dir, HEADROOM);
    expect(run.log.headroom.reservedBytes).toBeGreaterThanOrEqual(HEADROOM / 2);
    const preallocated = statSync(join(dir, 'audit.jsonl'));
    expect(preallocated.blocks * 512).toBeGreaterThan(preallocated.size + HEADROOM / 4);

    // The agent fills the disk to the last byte it can get.
    const filler = fill(workspace);

    // New calls: refused before the upstream, saying why and where.
    const refused = await run.call(1000).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string },
    );
    expect(refused?.code).toBe('AUDIT_UNAVAILABLE');
    expect(refused?.message).toMatch(new RegExp(`^audit disk headroom below 0\\.25 MiB on ${mount}; free space 0\\.\\d+ MiB: new calls are refused`));
    expect(run.reached()).toBe(IN_FLIGHT);

    // Calls already forwarded: their results come back, because their outcome records land.
    run.release();
    const results = await Promise.all(run.calls);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(run.log.failed).toBeUndefined();
    expect(run.log.lateRecords).toBe(0);
    const outcomes = (await queryAudit(dir, { event: 'tools/call' }, { limit: 1000 })).records;
    expect(outcomes.filter((r) => r.outcome === 'ok')).toHaveLength(IN_FLIGHT);
    expect(outcomes.some((r) => r.delivered === false)).toBe(false);
    expect((await queryAudit(dir, { event: 'audit.headroom' })).records[0]).toMatchObject({ state: 'low', headroomBytes: HEADROOM, filesystem: mount });

    // Space returns: calls are accepted again and the reserve is made again.
    unlinkSync(filler);
    const again = await run.call(2000);
    expect(again.isError).toBeUndefined();
    await until(() => run.log.headroom.reservedBytes >= HEADROOM / 2, 'the reserve to be made again');
    const states = (await queryAudit(dir, { event: 'audit.headroom' }, { order: 'asc' })).records;
    expect(states.map((r) => r.state)).toEqual(['low', 'ok']);
    expect(states[1]?.refusals).toBeGreaterThanOrEqual(1);
    await run.log.close();
    const report = await verifyAudit(dir);
    expect(report.problems).toEqual([]);
    expect(report.unfinishedCount).toBe(0);
  });

  it('without the headroom, the same fill costs the in-flight calls their results (each is still recorded later, as not delivered)', { timeout: 60_000 }, async () => {
    const { dir, workspace } = sharedDisk();
    const run = await startCalls(dir, 0);
    const filler = fill(workspace);
    run.release();
    const results = await Promise.all(run.calls);
    const lost = results.filter((r) => !r.ok);
    expect(lost.length).toBeGreaterThan(IN_FLIGHT / 2);
    expect(lost.every((r) => 'error' in r && /ENOSPC/.test(String(r.error?.message)))).toBe(true);
    // The writer keeps their records and writes them once it can (no call that ran upstream goes unaudited).
    unlinkSync(filler);
    await until(() => run.log.failed === undefined && run.log.lateRecords === 0, 'the log to recover and write the kept records');
    await run.log.flush();
    const outcomes = (await queryAudit(dir, { event: 'tools/call' }, { limit: 1000 })).records;
    expect(outcomes.filter((r) => r.delivered === false)).toHaveLength(lost.length);
    expect(new Set(outcomes.map((r) => (r.args as { i: number }).i)).size).toBe(IN_FLIGHT);
    await run.log.close();
    expect((await verifyAudit(dir)).problems).toEqual([]);
  });

  it('a disk already below the headroom when the log opens: calls refused from the start, with the numbers', async () => {
    const { dir, workspace } = sharedDisk();
    const filler = fill(workspace);
    unlinkSync(filler); // leave ~2 MiB: less than the headroom asked for below
    const log = await openLog(dir, { headroomBytes: 64 * 1024 * 1024, spaceCheckMs: 0 });
    expect(() => log.assertWritable()).toThrow(/^audit disk headroom below 64 MiB on .*; free space [\d.]+ MiB/);
    await log.append({ event: 'session.opened', agent: 'a' }); // records other than new calls still land
    await log.close();
  });
});
