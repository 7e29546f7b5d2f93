/**
 * A real Prometheus (the distribution's package; scripts/test-deps.sh
 * installs it) scrapes a real gateway during a load run, once through
 * `--metrics-listen` and once on the MCP port with an admin token as its
 * bearer credential; PromQL over its HTTP API must then return the call count.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/server/tokens.js';
import { startTestGateway, stdioFixture, tempDir, until, type TestGateway } from '../helpers/gateway.js';

const PROMETHEUS = process.env.GATEHOUSE_PROMETHEUS ?? '/usr/bin/prometheus';
const CALLS = 300;

let t: TestGateway;
let prom: ChildProcess | undefined;
let promUrl: string;
let stderr = '';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The value of an instant PromQL query (undefined while it has no result). */
async function query(q: string): Promise<number | undefined> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { status: string; data: { result: Array<{ value: [number, string] }> } };
  expect(body.status).toBe('success');
  const v = body.data.result[0]?.value[1];
  return v === undefined ? undefined : Number(v);
}

beforeAll(async () => {
  if (!existsSync(PROMETHEUS)) throw new Error(`${PROMETHEUS} is missing: run scripts/test-deps.sh (it installs the distribution's prometheus package), or set GATEHOUSE_PROMETHEUS`);
  t = await startTestGateway({
    connectors: (log) => [stdioFixture('fx', log)],
    runtime: { metricsListen: { host: '127.0.0.1', port: 0 } },
  });
  const dir = tempDir();
  const admin = (await mintToken(t.gw.keys, 'prometheus', 3_600_000, Date.now(), { admin: true })).token;
  const listen = new URL(t.gw.metricsUrl ?? '');
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    '  - job_name: gatehouse',
    '    static_configs:',
    `      - targets: ['${listen.host}']`,
    '  - job_name: gatehouse-admin-token',
    '    authorization:',
    '      type: Bearer',
    `      credentials: ${admin}`,
    '    static_configs:',
    `      - targets: ['127.0.0.1:${t.port}']`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'prometheus.yml'), config);
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  prom = spawn(PROMETHEUS, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  prom.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-4000)));
  await until(async () => {
    if (prom?.exitCode !== null) throw new Error(`prometheus exited (${prom?.exitCode}): ${stderr}`);
    return (await fetch(`${promUrl}/-/ready`).catch(() => undefined))?.status === 200;
  }, 'prometheus to be ready', 60_000);
}, 120_000);

afterAll(async () => {
  if (prom && prom.exitCode === null) {
    const exited = new Promise<void>((r) => prom?.once('exit', () => r()));
    prom.kill('SIGTERM');
    await exited;
  }
  await t?.close();
});

describe('Prometheus scraping /metrics', () => {
  it('PromQL returns the number of calls made during a load run, through both doors', async () => {
    const client = await t.client('loader');
    for (let i = 0; i < CALLS; i += 20) {
      await Promise.all(Array.from({ length: Math.min(20, CALLS - i) }, (_, k) => client.callTool({ name: 'fx__echo', arguments: { text: `load ${i + k}` } })));
    }
    for (const job of ['gatehouse', 'gatehouse-admin-token']) {
      const q = `sum(gatehouse_tool_calls_total{job="${job}",agent="loader",tool="fx__echo",decision="allow",outcome="ok"})`;
      await until(async () => (await query(q)) === CALLS, `${q} = ${CALLS} (last error: ${stderr})`, 60_000);
      expect(await query(`up{job="${job}"}`)).toBe(1);
    }
    // The histograms too: every forwarded call has its gateway share observed once.
    await until(async () => (await query('sum(gatehouse_tool_call_gateway_seconds_count{job="gatehouse",connector="fx"})')) === CALLS, 'the gateway-share histogram count');
    expect(await query('sum(gatehouse_tool_call_gateway_seconds_bucket{job="gatehouse",connector="fx",le="+Inf"})')).toBe(CALLS);
  }, 180_000);
});
