/**
 * A real third-party MCP client: the MCP Inspector CLI (devDependency, pinned
 * 0.21.2) lists and calls tools through the gateway with a bearer token.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startTestGateway, stdioFixture, type TestGateway } from '../helpers/gateway.js';

const INSPECTOR = join(ROOT, 'node_modules', '@modelcontextprotocol', 'inspector', 'cli', 'build', 'index.js');
let t: TestGateway;
let token: string;

beforeAll(async () => {
  t = await startTestGateway({ connectors: (log) => [stdioFixture('fx', log)] });
  token = await t.mint('inspector');
});
afterAll(() => t?.close());

function inspector(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [INSPECTOR, t.url, '--transport', 'http', '--header', `Authorization: Bearer ${token}`, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('MCP Inspector CLI against the gateway', () => {
  it('tools/list shows the namespaced fixture tools', async () => {
    const r = await inspector(['--method', 'tools/list']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const names = (JSON.parse(r.stdout) as { tools: Array<{ name: string }> }).tools.map((x) => x.name);
    expect(names).toEqual(expect.arrayContaining(['fx__add', 'fx__echo', 'fx__mixed']));
  });

  it('tools/call with --tool-arg (numbers parsed as numbers) returns structured content', async () => {
    const before = t.calls().length;
    const r = await inspector(['--method', 'tools/call', '--tool-name', 'fx__add', '--tool-arg', 'a=1', 'b=2']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ structuredContent: { sum: 3 } });
    expect(t.calls().slice(before)).toEqual([expect.objectContaining({ tool: 'add', args: { a: 1, b: 2 } })]);
  });

  it('without the token the inspector is refused (401)', async () => {
    const p = spawn(process.execPath, [INSPECTOR, t.url, '--transport', 'http', '--method', 'tools/list'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let all = '';
    p.stdout.on('data', (c: Buffer) => (all += c.toString()));
    p.stderr.on('data', (c: Buffer) => (all += c.toString()));
    const code = await new Promise<number | null>((r) => p.once('close', r));
    expect(code).not.toBe(0);
    expect(all).toMatch(/401|Unauthorized/i);
  });
});
