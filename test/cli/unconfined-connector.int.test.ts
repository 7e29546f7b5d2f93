/**
 * `sandbox: off` is loud (issue #15) on a real gateway: the audit records
 * name the unconfined connectors, each start logs a warning, `status` (text
 * and --json) says UNCONFINED, and `gatehouse serve` warns at start-up and
 * when a reload brings one. The fixture connectors of test/helpers/gateway.ts
 * are `sandbox: off`, so each is an unconfined one.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchStatus, formatStatus } from '../../src/cli/status.js';
import { runCli } from '../helpers/cli.js';
import { CLI, startTestGateway, stdioFixture, tempDir, until, writeConfig, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const records = (gw: TestGateway, event: string) => gw.audit().filter((r) => r.event === event);

describe('audit: unconfined connectors are on record', () => {
  it('gateway.start and registry.reload name the sandbox: off connectors, and a reload that adds one names it too', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], runtime: { registryPollMs: 300 } });
    expect(records(t, 'gateway.start')[0]).toMatchObject({ unconfined: ['fx'] });
    expect(records(t, 'registry.reload')[0]).toMatchObject({ ok: true, unconfined: ['fx'] });

    writeFileSync(join(t.dirs.registry, 'fy.yaml'), stringify(stdioFixture('fy', t.callLog)));
    const reload = await until(() => records(t as TestGateway, 'registry.reload').find((r) => Array.isArray(r.added) && (r.added as string[]).includes('fy')), 'the reload that adds fy');
    expect(reload).toMatchObject({ ok: true, added: ['fy'], unconfined: ['fx', 'fy'] });
  });

  it('no unconfined field when no stdio connector runs unconfined (a disabled one does not run)', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log, { enabled: false })] });
    const start = records(t, 'gateway.start')[0];
    expect(start).toBeDefined();
    expect(start).not.toHaveProperty('unconfined');
    expect(records(t, 'registry.reload')[0]).not.toHaveProperty('unconfined');
  });

  it('each start of an unconfined stdio upstream logs a warning (a restart too)', async () => {
    const warnings: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) });
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], runtime: { logger } });
    const unconfined = () => warnings.filter((w) => w.connector === 'fx' && /runs unconfined \(sandbox: off\)/.test(String(w.msg)));
    expect(unconfined()).toHaveLength(1);
    expect(unconfined()[0]).toMatchObject({ sandbox: 'off', file: join(t.dirs.registry, 'fx.yaml') });
    await t.gw.gateway.applyRegistry({ dir: t.dirs.registry, connectors: t.gw.gateway.opts.registry.connectors.map((c) => ({ ...c, description: 'changed: restarts' })) });
    await until(() => unconfined().length === 2 || undefined, 'the warning of the restart');
  });
});

describe('status: an unconfined connector says so', () => {
  it('status text shows UNCONFINED (sandbox: off) and status --json carries sandbox: "off"', async () => {
    t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)] });
    const s = await fetchStatus(t.dirs.state);
    expect(s.connectors.map((r) => [r.name, r.sandbox])).toEqual([['fx', 'off']]);
    expect(formatStatus(s, 'gatehouse')).toMatch(/^fx +stdio +ready +\d+ +UNCONFINED \(sandbox: off\)/m);
    const ran = await runCli(['status', '--json', '--registry', t.dirs.registry, '--policies', t.dirs.policies, '--state', t.dirs.state], { env: { HOME: t.root } });
    expect(ran.code).toBe(0);
    const json = JSON.parse(ran.stdout) as { connectors: Array<{ name: string; sandbox?: string }> };
    expect(json.connectors).toEqual([expect.objectContaining({ name: 'fx', sandbox: 'off' })]);
  });
});

describe('serve: the unconfined warning', () => {
  it('warns at start-up and after a reload that adds one; a hostile path in it is printed escaped', async () => {
    const base = tempDir();
    // A folder name that clears the screen if printed raw.
    const root = join(base, 'evil\x1b[2J\x1b[H');
    mkdirSync(root);
    const dirs = writeConfig(root, [stdioFixture('fx', join(root, 'calls.jsonl'))]);
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--registry', dirs.registry, '--policies', dirs.policies, '--state', dirs.state], {
      env: { PATH: process.env.PATH ?? '', HOME: base },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const warnings = () => [...err.matchAll(/^warning: connector "([^"]+)" runs unconfined \(sandbox: off in ([^)]*)\): it can read your files and keys and reach the network$/gm)];
    try {
      await until(() => /serving MCP at /.test(out), 'the banner', 30_000);
      expect(warnings().map((m) => m[1])).toEqual(['fx']);
      expect(warnings()[0]?.[2]).toBe(`${base}/evil\\x1b[2J\\x1b[H/registry/fx.yaml`);
      expect(err).not.toContain('\x1b');

      writeFileSync(join(dirs.registry, 'fy.yaml'), stringify(stdioFixture('fy', join(root, 'calls.jsonl'))));
      await until(() => warnings().length >= 2, 'the warning for the connector the reload added', 30_000);
      expect(warnings().map((m) => m[1])).toEqual(['fx', 'fy']);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(base, { recursive: true, force: true });
    }
  });
});
