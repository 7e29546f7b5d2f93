/**
 * Nothing lost across a crash: a forwarded call has an intent record on disk
 * before it reaches the upstream and its outcome after, linked by a random
 * call id. A call with an intent and no outcome is `pending` while the
 * gateway that wrote it runs, and `unknown (gateway stopped)` once it is gone.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { queryAudit } from '../../src/audit/query.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { handleToolCall } from '../../src/broker/pipeline.js';
import { loadTokenKeys, mintToken } from '../../src/server/tokens.js';
import { startServe } from '../helpers/cli.js';
import { CLI, isAlive, readJsonLines, stdioFixture, tempDir, until, writeConfig } from '../helpers/gateway.js';
import { agentClient, descendants } from '../reliability/helpers.js';
import { openLog, tempState } from './helpers.js';
import { echoDeps } from './pipeline-deps.js';

const cleanup: string[] = [];
const stray: number[] = [];
afterAll(() => {
  for (const pid of stray) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

const serve = (root: string, dirs: { registry: string; policies: string; state: string }) =>
  startServe(['--registry', dirs.registry, '--policies', dirs.policies], { HOME: root, GATEHOUSE_STATE: dirs.state, GATEHOUSE_LOG_LEVEL: 'error' });

/** Runs the real `gatehouse` CLI against a state directory. */
function gatehouse(state: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', GATEHOUSE_STATE: state }, encoding: 'utf8', timeout: 30_000 });
}

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('intent before forwarding, outcome after', () => {
  it('gateway SIGKILLed with calls in flight: each forwarded call has an intent and shows as unknown (gateway stopped)', { timeout: 90_000 }, async () => {
    const root = tempDir('gh-intent-kill-');
    cleanup.push(root);
    const callLog = join(root, 'calls.jsonl');
    const dirs = writeConfig(root, [stdioFixture('fx', callLog)]);
    const { child, url } = await serve(root, dirs);
    const token = (await mintToken(await loadTokenKeys(dirs.state), 'victim', 3_600_000)).token;
    const agent = await agentClient(url, token);

    // One call that completes, then four that wait upstream (a slow tool) when the gateway dies.
    const done = await agent.client.callTool({ name: 'fx__echo', arguments: { text: 'finished' } });
    expect(done.isError).not.toBe(true);
    const MS = [60_001, 60_002, 60_003, 60_004];
    // (A request cut by the kill would otherwise wait for the SDK's request timeout.)
    const inFlight = MS.map((ms) => agent.client.callTool({ name: 'fx__slow', arguments: { ms } }, undefined, { timeout: 30_000 }).catch(() => 'cut by the kill'));
    await until(() => readJsonLines(callLog).filter((c) => c.tool === 'slow').length === MS.length, 'the slow calls to reach the upstream', 20_000);
    stray.push(...descendants(child.pid).map((p) => p.pid));

    // While the gateway lives, they are in flight: pending, not unknown.
    const live = jsonLines(gatehouse(dirs.state, ['logs', '--json', '--outcome', 'pending']).stdout);
    expect(live.map((r) => r.callStatus)).toEqual(MS.map(() => 'pending'));

    child.kill('SIGKILL');
    await new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
    expect(child.signalCode).toBe('SIGKILL');
    await agent.close().catch(() => undefined);
    expect(await Promise.all(inFlight)).toEqual(MS.map(() => 'cut by the kill'));

    // `gatehouse logs --json`: every forwarded call that never got its outcome shows as an intent with its status.
    const logs = gatehouse(dirs.state, ['logs', '--json', '--reverse']);
    expect(logs.status).toBe(0);
    const records = jsonLines(logs.stdout);
    const intents = records.filter((r) => r.event === 'tools/call.intent');
    expect(intents.map((r) => (r.args as { ms: number }).ms).sort()).toEqual(MS);
    for (const r of intents) {
      expect(r).toMatchObject({ agent: 'victim', tool: 'fx__slow', connector: 'fx', decision: 'allow', callStatus: 'unknown (gateway stopped)' });
      expect(r.call).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(new Set(intents.map((r) => r.call)).size).toBe(MS.length);
    // The finished call is one row, its outcome (its intent is not shown); the outcome carries the call id.
    const finished = records.filter((r) => r.tool === 'fx__echo');
    expect(finished).toEqual([expect.objectContaining({ event: 'tools/call', outcome: 'ok', call: expect.stringMatching(/^[0-9a-f-]{36}$/) })]);

    // The table says it in words.
    const table = gatehouse(dirs.state, ['logs', '--tool', 'fx__slow']).stdout;
    expect(table.match(/unknown \(gateway stopped\)/g)).toHaveLength(MS.length);
    const unknown = jsonLines(gatehouse(dirs.state, ['logs', '--json', '--outcome', 'unknown']).stdout);
    expect(unknown).toHaveLength(MS.length);

    // `gatehouse audit verify`: the chain is intact, and the calls without an outcome are listed.
    const verify = gatehouse(dirs.state, ['audit', 'verify', '--json']);
    expect(verify.status).toBe(0);
    const report = JSON.parse(verify.stdout) as { ok: boolean; unfinishedCount: number; unfinished: Array<{ call: string; status: string; tool: string }> };
    expect(report.ok).toBe(true);
    expect(report.unfinishedCount).toBe(MS.length);
    expect(report.unfinished.map((c) => c.call).sort()).toEqual(intents.map((r) => r.call).sort());
    expect(report.unfinished.every((c) => c.status === 'unknown (gateway stopped)' && c.tool === 'fx__slow')).toBe(true);
    const text = gatehouse(dirs.state, ['audit', 'verify']).stdout;
    expect(text).toContain(`${MS.length} forwarded calls without an outcome record`);
    expect(text.match(/: unknown \(gateway stopped\)/g)).toHaveLength(MS.length);

    // A restarted gateway does not adopt them: they stay unknown while the new one runs.
    const again = await serve(root, dirs);
    try {
      const still = jsonLines(gatehouse(dirs.state, ['logs', '--json', '--outcome', 'unknown']).stdout);
      expect(still).toHaveLength(MS.length);
      expect(jsonLines(gatehouse(dirs.state, ['logs', '--json', '--outcome', 'pending']).stdout)).toEqual([]);
    } finally {
      again.child.kill('SIGTERM');
      await new Promise((r) => again.child.once('exit', r));
    }
  });

  it('a completed call is one row (its outcome); the intent is on disk first with the same call id, and shows as done when asked for', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    let intentOnDiskWhenForwarded = false;
    const deps = echoDeps(log, async () => {
      const page = await queryAudit(dir, { event: 'tools/call.intent' });
      intentOnDiskWhenForwarded = page.records.length === 1 && page.records[0]?.callStatus === 'pending';
    });
    for (let i = 0; i < 12; i++) {
      const r = await handleToolCall(deps, { agent: 'a', session: 's', name: 'demo__echo', args: { i }, signal: new AbortController().signal });
      expect(r.isError).toBeUndefined();
      if (i === 0) expect(intentOnDiskWhenForwarded).toBe(true);
    }
    // A page of 5 is filled with calls, not with the intents it hides.
    const page = await queryAudit(dir, {}, { limit: 5 });
    expect(page.records.map((r) => r.event)).toEqual(Array(5).fill('tools/call'));
    expect(page.more).toBe(true);
    const all = await queryAudit(dir, { agent: 'a' }, { limit: 100, order: 'asc' });
    expect(all.records.map((r) => (r.args as { i: number }).i)).toEqual([...Array(12).keys()]);
    const intents = await queryAudit(dir, { event: 'tools/call.intent' }, { limit: 100 });
    expect(intents.records).toHaveLength(12);
    expect(intents.records.every((r) => r.callStatus === 'done')).toBe(true);
    expect(new Set(intents.records.map((r) => r.call))).toEqual(new Set(all.records.map((r) => r.call)));
    await log.close();
    const report = await verifyAudit(dir);
    expect(report.problems).toEqual([]);
    expect(report.unfinishedCount).toBe(0);
  });

  it('an intent without an outcome: pending while its writer holds the log, unknown (gateway stopped) once it is closed and while a later writer runs', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    await log.append({ event: 'tools/call.intent', call: 'c-1', agent: 'a', tool: 'demo__echo', args: {} });
    expect((await queryAudit(dir)).records[0]).toMatchObject({ call: 'c-1', callStatus: 'pending' });
    expect((await verifyAudit(dir)).unfinished).toEqual([expect.objectContaining({ call: 'c-1', status: 'pending', agent: 'a', tool: 'demo__echo' })]);
    await log.close();
    expect((await queryAudit(dir)).records.find((r) => r.call === 'c-1')).toMatchObject({ callStatus: 'unknown (gateway stopped)' });
    const next = await openLog(dir);
    await next.append({ event: 'tools/call.intent', call: 'c-2', agent: 'a', tool: 'demo__echo', args: {} });
    const page = await queryAudit(dir, { event: 'tools/call.intent' });
    expect(Object.fromEntries(page.records.map((r) => [r.call, r.callStatus]))).toEqual({ 'c-1': 'unknown (gateway stopped)', 'c-2': 'pending' });
    await next.close();
  });
});
