/**
 * `gatehouse serve` as a user runs it (the built CLI, a child process):
 * without an OTEL_* endpoint the OpenTelemetry SDK is not even loaded (idle
 * memory, per-call cost); with one, traces are on and the start-up report
 * says where they go; --metrics-listen serves /metrics; a bad OTEL_* value
 * stops the start with a message naming it.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, tempDir, writeConfig } from '../helpers/gateway.js';
import { startHttpCollector, type Collector } from './otlp.js';

const RESOLVE_LOG_HOOK = join(import.meta.dirname, 'resolve-log.mjs');
const SDK = /\/node_modules\/@opentelemetry\/(sdk-trace|exporter-trace-otlp-[a-z]+)\//;

interface Served {
  report: Record<string, unknown>;
  /** Every module URL the process resolved. */
  modules: string[];
}

/** Runs `serve --json` until its report, then stops it (SIGTERM); or resolves with its exit when it fails to start. */
function serve(env: Record<string, string>, args: string[] = []): Promise<Served | { exitCode: number | null; stderr: string }> {
  const root = tempDir();
  const dirs = writeConfig(root, []);
  const log = join(root, 'resolved.txt');
  const child = spawn(process.execPath, ['--import', RESOLVE_LOG_HOOK, CLI, 'serve', '--port', '0', '--json', '--registry', dirs.registry, '--policies', dirs.policies, '--state', dirs.state, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: root, GATEHOUSE_LOG_LEVEL: 'warn', RESOLVE_LOG: log, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => resolve({ exitCode: code, stderr: err }));
    child.once('error', reject);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line === undefined) return;
      child.removeAllListeners('exit');
      const report = JSON.parse(line) as Record<string, unknown>;
      const done = async (): Promise<Served> => {
        const url = typeof report.metrics === 'string' ? report.metrics : undefined;
        if (url !== undefined) report.scraped = await (await fetch(url)).text();
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        await exited;
        return { report, modules: existsSync(log) ? readFileSync(log, 'utf8').split('\n') : [] };
      };
      done().then(resolve, reject);
    });
  });
}

let collector: Collector;
beforeAll(async () => {
  collector = await startHttpCollector();
});
afterAll(async () => {
  await collector?.close();
});

describe('gatehouse serve and telemetry', () => {
  it('without an OTEL_* endpoint the OpenTelemetry SDK is never loaded', async () => {
    const r = await serve({ OTEL_SERVICE_NAME: 'no-endpoint', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
    if (!('report' in r)) throw new Error(`serve did not start: ${r.stderr}`);
    // Guard: the log really lists what was loaded.
    expect(r.modules.some((m) => m.includes('/dist/src/app/gateway.js'))).toBe(true);
    expect(r.modules.filter((m) => SDK.test(m))).toEqual([]);
    // Nor prom-client, before anything scrapes /metrics.
    expect(r.modules.filter((m) => m.includes('/node_modules/prom-client/'))).toEqual([]);
    expect(r.report.traces).toBeUndefined();
  });

  it('with an endpoint traces are on, the report says where, and --metrics-listen serves /metrics', async () => {
    const r = await serve({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint }, ['--metrics-listen', '127.0.0.1:0']);
    if (!('report' in r)) throw new Error(`serve did not start: ${r.stderr}`);
    expect(r.modules.some((m) => SDK.test(m))).toBe(true);
    // Only the exporter of the protocol in use.
    expect(r.modules.some((m) => m.includes('/exporter-trace-otlp-grpc/'))).toBe(false);
    expect(r.report.traces).toEqual({ protocol: 'http/protobuf', endpoint: collector.endpoint });
    expect(r.report.metrics).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(r.report.scraped).toContain('gatehouse_mcp_sessions 0');
  });

  it('a bad OTEL_* value stops the start with a message that names the variable', async () => {
    const r = await serve({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
    expect('exitCode' in r && r.exitCode !== 0).toBe(true);
    expect((r as { stderr: string }).stderr).toContain('OTEL_EXPORTER_OTLP_PROTOCOL');
  });

  it('a malformed --metrics-listen is refused with the form to use', async () => {
    const r = await serve({}, ['--metrics-listen', '9464']);
    expect('exitCode' in r && r.exitCode !== 0).toBe(true);
    expect((r as { stderr: string }).stderr).toContain('HOST:PORT');
  });
});
