/**
 * `serve --host 0.0.0.0`: the gateway says every address it can be reached at,
 * accepts those addresses as Host, and a host name it was not given gets a 403
 * that names the flag (`--allowed-host`) which accepts it.
 */
import { spawn } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, initializeBody, MCP_HEADERS, startTestGateway, stdioFixture, tempDir, writeConfig, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;

beforeAll(async () => {
  t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)], runtime: { host: '0.0.0.0', allowedHosts: ['gate.example'] } });
});
afterAll(() => t?.close());

const initialize = (host: string, token: string) => t.raw({ token, headers: { ...MCP_HEADERS, host }, body: JSON.stringify(initializeBody()) });

describe('a gateway bound to 0.0.0.0', () => {
  it('lists a URL for each IPv4 address of the machine, loopback first; url stays the loopback one', () => {
    const v4 = Object.values(networkInterfaces()).flatMap((l) => l ?? []).filter((n) => n.family === 'IPv4');
    expect(v4.length).toBeGreaterThan(0);
    expect(t.gw.url).toBe(`http://127.0.0.1:${t.port}/mcp`);
    expect(t.gw.urls[0]).toBe(`http://127.0.0.1:${t.port}/mcp`);
    expect([...t.gw.urls].sort()).toEqual([...new Set(v4.map((n) => `http://${n.address}:${t.port}/mcp`))].sort());
  });

  it('accepts each of its own addresses as Host (an IP literal cannot be DNS-rebound)', async () => {
    const token = await t.mint('alice');
    for (const u of t.gw.urls) {
      const r = await initialize(new URL(u).host, token);
      expect(r.status, u).toBe(200);
    }
  });

  it('accepts a name given with --allowed-host NAME on the listening port', async () => {
    expect((await initialize(`gate.example:${t.port}`, await t.mint('alice'))).status).toBe(200);
  });

  it('refuses an unknown host name with 403 naming the flag that accepts it, before any token check', async () => {
    const r = await initialize(`mybox.lan:${t.port}`, 'not-even-a-token');
    expect(r.status).toBe(403);
    expect((r.json() as { error: { message: string } }).error.message).toBe(
      `Forbidden: Host "mybox.lan:${t.port}" is not allowed; allow it with: gatehouse serve --allowed-host mybox.lan:${t.port}`,
    );
  });
});

describe('gatehouse serve --host 0.0.0.0 (the CLI)', () => {
  it('prints every address it can be reached at and how to allow host names', async () => {
    const root = tempDir();
    const dirs = writeConfig(root, [stdioFixture('fx', join(root, 'calls.jsonl'))]);
    const child = spawn(process.execPath, [CLI, 'serve', '--host', '0.0.0.0', '--port', '0', '--registry', dirs.registry, '--policies', dirs.policies, '--state', dirs.state], {
      env: { PATH: process.env.PATH ?? '', HOME: root },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const out = await new Promise<string>((resolve, reject) => {
        let text = '';
        child.stdout.on('data', (d: Buffer) => {
          text += d.toString();
          if (text.includes('Give an agent a token')) resolve(text);
        });
        child.once('exit', (c) => reject(new Error(`serve exited ${c}: ${text}`)));
      });
      const port = /serving MCP at http:\/\/127\.0\.0\.1:(\d+)\/mcp/.exec(out)?.[1];
      expect(port, out).toBeDefined();
      const v4 = Object.values(networkInterfaces()).flatMap((l) => l ?? []).filter((n) => n.family === 'IPv4');
      for (const n of v4) expect(out).toContain(`reachable at http://${n.address}:${port}/mcp\n`);
      expect(out).toContain('--allowed-host NAME');
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });
});
