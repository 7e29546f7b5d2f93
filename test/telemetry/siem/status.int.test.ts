/**
 * The backlog is visible: `gatehouse status` (the built CLI, over the
 * running gateway's control socket) has a SIEM line and a row per sink, and
 * `shipperStats()` gives the same numbers to the metrics.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { startTestGateway, stdioFixture, until, type TestGateway } from '../../helpers/gateway.js';
import { shipperStats } from '../../../src/telemetry/siem/index.js';
import { drained, FAST, startSiemGateway, type SiemGateway } from './helpers.js';
import { startWebhookSim, type WebhookSim } from './sims.js';

let t: SiemGateway | TestGateway | undefined;
let sim: WebhookSim | undefined;
afterEach(async () => {
  await t?.close();
  await sim?.close();
  t = undefined;
  sim = undefined;
});

const status = (state: string, ...args: string[]) => runCli(['status', '--state', state, ...args], { env: { HOME: state } });

describe('SIEM shipping in gatehouse status', () => {
  it('a failing sink shows its backlog, state and last error; once it drains, backlog 0 and how far it shipped', async () => {
    sim = await startWebhookSim();
    sim.mode = 'busy';
    const g = await startSiemGateway([{ name: 'hook', kind: 'webhook', url: sim.url, ...FAST }]);
    t = g;
    const c = await g.client('laptop-claude');
    for (let i = 0; i < 3; i++) await c.callTool({ name: 'fx__echo', arguments: { text: String(i) } });
    await until(() => g.stats().failures >= 2, 'failed sends');

    const failing = await status(g.dirs.state);
    expect(failing.code).toBe(0);
    expect(failing.stdout).toMatch(/\nSIEM shipping: 1 sink, backlog \d+ records\n/);
    expect(failing.stdout).toMatch(/\nhook +webhook +retrying +\d+ +- +webhook http:\/\/127\.0\.0\.1:\d+ answered HTTP 503/);
    // The same numbers for the metrics: from the module, and as the gauge /metrics shows.
    expect(shipperStats().find((s) => s.sink === 'hook')).toMatchObject({ kind: 'webhook', state: 'retrying' });
    expect(shipperStats().find((s) => s.sink === 'hook')?.backlog).toBeGreaterThan(3);
    const gauge = /^gatehouse_siem_backlog_records\{sink="hook"\} (\d+)$/m.exec(await g.gw.metrics.render());
    expect(Number(gauge?.[1])).toBeGreaterThan(3);

    sim.mode = 'ok';
    const done = await drained(g);
    const json = JSON.parse((await status(g.dirs.state, '--json')).stdout) as { siem: Array<Record<string, unknown>> };
    expect(json.siem[0]).toMatchObject({ sink: 'hook', kind: 'webhook', lastError: null });
    expect(json.siem[0]?.lastShippedSeq as number).toBeGreaterThanOrEqual(done.lastShippedSeq as number);
  });

  it('a gateway that ships nowhere says so', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)] });
    const r = await status(t.dirs.state);
    expect(r.stdout).toContain('\nSIEM shipping: off (gatehouse serve --siem FILE)\n');
  });

  it('serve refuses a SIEM file with a mistake before it starts, naming file, line and key', async () => {
    const { writeConfig, tempDir } = await import('../../helpers/gateway.js');
    const { writeFileSync } = await import('node:fs');
    const root = tempDir();
    const dirs = writeConfig(root, [stdioFixture('fx', `${root}/calls.jsonl`)]);
    const file = `${root}/siem.yaml`;
    writeFileSync(file, 'sinks:\n  - name: hook\n    kind: webhook\n    url: https://siem.example/in\n    batchRecord: 5\n');
    const r = await runCli(['serve', '--port', '0', '--registry', dirs.registry, '--policies', dirs.policies, '--state', dirs.state, '--siem', file], { env: { HOME: root } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:5:5: sinks[0].batchRecord: unknown key "batchRecord" (misspelt?)`);
  });
});
