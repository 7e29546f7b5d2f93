/**
 * undici is loaded on first use (src/undici.ts): importing it costs some
 * 8 MiB of RSS. A `gatehouse serve` whose connectors are stdio servers, plus
 * an http one whose secret is missing (the default registry's github without
 * its token), serves calls without ever loading it; one with an http
 * upstream it reaches loads it.
 * Real CLI process; a preload notes, when the process exits, which undici
 * files Node loaded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { describe, expect, it } from 'vitest';
import { loadTokenKeys, mintToken } from '../../src/server/tokens.js';
import { CLI, spawnHttpFixture, stdioFixture, tempDir, until, writeConfig, type ConnectorSpec } from '../helpers/gateway.js';

const PROBE = `
const { writeFileSync } = require('node:fs');
const Module = require('node:module');
process.on('exit', () => {
  const files = Object.keys(Module._cache).filter((f) => f.includes('/node_modules/undici/'));
  writeFileSync(process.env.UNDICI_PROBE_OUT, JSON.stringify(files));
});
`;

/** Runs serve with `connectors`, calls `tool` as alice (if given), stops it; the undici files it loaded. */
async function undiciFilesLoaded(connectors: readonly ConnectorSpec[], tool: string | undefined, ready: (status: string) => boolean): Promise<string[]> {
  const root = tempDir();
  const dirs = writeConfig(root, connectors);
  const probe = join(root, 'probe.cjs');
  const out = join(root, 'loaded.json');
  writeFileSync(probe, PROBE);
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--registry', dirs.registry, '--policies', dirs.policies, '--state', dirs.state], {
    // No D-Bus: the keychain is unavailable, so a `${secret:…}` header cannot be rendered.
    env: { PATH: process.env.PATH ?? '', HOME: root, NODE_OPTIONS: `--require ${probe}`, UNDICI_PROBE_OUT: out },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  try {
    const url = await until(() => /serving MCP at (http:\/\/\S+)/.exec(text)?.[1], 'the banner', 30_000);
    if (tool === undefined) return await until(() => ready(text), 'ready', 30_000).then(() => stopAndRead(child, out));
    const token = (await mintToken(await loadTokenKeys(dirs.state), 'alice', 600_000)).token;
    const client = new Client({ name: 't', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    await until(async () => ready(text) && (await client.listTools()).tools.some((t) => t.name === tool), `${tool} listed`, 30_000);
    expect((await client.callTool({ name: tool, arguments: { text: 'hi' } })).content).toEqual([{ type: 'text', text: 'hi' }]);
    await client.close();
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return stopAndRead(child, out);
}

async function stopAndRead(child: ChildProcess, out: string): Promise<string[]> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  return JSON.parse(readFileSync(out, 'utf8')) as string[];
}

describe('undici is loaded on first use', () => {
  it('a gateway of stdio connectors and an http one whose secret is missing serves calls without loading undici (8 MiB of RSS)', async () => {
    const root = tempDir();
    const connectors: ConnectorSpec[] = [
      stdioFixture('fx', join(root, 'calls.jsonl')),
      { name: 'gh', kind: 'http', url: 'http://127.0.0.1:9/mcp', headers: { Authorization: 'Bearer ${secret:gh-token}' } },
    ];
    // gh tried to start and is not ready, for want of its secret.
    const loaded = await undiciFilesLoaded(connectors, 'fx__echo', (log) => /"connector":"gh","reason":"the OS keychain is unavailable[^\n]*"msg":"connector not ready"/.test(log));
    expect(loaded).toEqual([]);
  });

  it('a gateway with a model provider registered loads undici at start, so the first model call does not stall every call for it (~80 ms)', async () => {
    const provider = { name: 'anthropic', kind: 'inference', api: 'anthropic', url: 'http://127.0.0.1:9', headers: { 'x-api-key': '${secret:anthropic-key}' }, models: { allow: ['claude-*'] } };
    const loaded = await undiciFilesLoaded([provider], undefined, () => true);
    expect(loaded.length).toBeGreaterThan(0);
  });

  it('a gateway with an http upstream it reaches loads undici (the probe sees a load)', async () => {
    const http = await spawnHttpFixture();
    try {
      const loaded = await undiciFilesLoaded([{ name: 'web', kind: 'http', url: http.url }], 'web__echo', () => true);
      expect(loaded.length).toBeGreaterThan(0);
    } finally {
      await http.close();
    }
  });
});
