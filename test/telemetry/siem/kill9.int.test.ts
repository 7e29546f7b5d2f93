/**
 * At least once across a crash: `gatehouse serve` (a real process) is
 * killed with SIGKILL while the receiver holds a batch it has stored but not
 * acknowledged. After a restart the shipper resumes from its cursor: no
 * record is lost, and the only records that arrive twice are those of the
 * batch that was in flight.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { appendAuditRecord } from '../../../src/audit/append.js';
import { startServe, type Serving } from '../../helpers/cli.js';
import { isAlive, stdioFixture, tempDir, until, writeConfig } from '../../helpers/gateway.js';
import { counts, missing, writeSiemFile } from './helpers.js';
import { seqOf, startWebhookSim, type WebhookSim } from './sims.js';

let serve: Serving | undefined;
let sim: WebhookSim | undefined;
afterEach(async () => {
  await serve?.stop();
  await sim?.close();
});

async function append(state: string, from: number, n: number): Promise<void> {
  for (let i = from; i < from + n; i++) await appendAuditRecord(state, { event: 'test.load', n: i });
}

describe('SIEM shipping across a kill -9 of the gateway', () => {
  it('resumes from its cursor: every record arrives, and only the unacknowledged batch arrives twice', async () => {
    sim = await startWebhookSim();
    const root = tempDir();
    const dirs = writeConfig(root, [stdioFixture('fx', join(root, 'calls.jsonl'))]);
    const siem = writeSiemFile([{ name: 'hook', kind: 'webhook', url: sim.url, format: 'jsonl', batchRecords: 25, retry: { initial: '20ms', max: '200ms' }, poll: '20ms' }]);
    const args = ['--registry', dirs.registry, '--policies', dirs.policies, '--state', dirs.state, '--siem', siem];
    const env = { HOME: root };
    serve = await startServe(args, env);
    await append(dirs.state, 0, 60);
    await until(() => sim!.received.events.some((e) => e.n === 59), 'the first records to arrive');

    // The next batch is stored by the receiver but never acknowledged; the gateway dies meanwhile.
    sim.hold = true;
    await append(dirs.state, 60, 60);
    const held = (await until(() => sim!.held, 'a batch in flight')).map(seqOf);
    const cursor = JSON.parse(readFileSync(join(dirs.state, 'siem', 'hook.cursor'), 'utf8')) as { seq: number };
    expect(cursor.seq).toBe((held[0] as number) - 1);
    const pid = serve.child.pid as number;
    serve.child.kill('SIGKILL');
    await until(() => !isAlive(pid), 'the gateway to die');
    serve = undefined;

    sim.hold = false;
    serve = await startServe(args, env);
    await append(dirs.state, 120, 30);
    const log = readFileSync(join(dirs.state, 'audit', 'audit.jsonl'), 'utf8').trim().split('\n');
    const last = (JSON.parse(log.at(-1) as string) as { seq: number }).seq;
    await until(() => missing(sim!.received.events, last).length === 0, 'every record to arrive', 30_000);

    const twice = [...counts(sim.received.events)].filter(([, n]) => n > 1).map(([s]) => s);
    expect(held.length).toBeGreaterThan(0);
    expect(twice.length).toBeGreaterThan(0);
    expect(twice.every((s) => held.includes(s))).toBe(true);
    expect([...counts(sim.received.events).values()].every((n) => n <= 2)).toBe(true);
  });
});
