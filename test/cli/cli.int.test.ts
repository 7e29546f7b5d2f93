/**
 * The built `gatehouse` CLI (dist/, from `npm run build`) as a user runs it:
 * serve prints a URL and a token command that work, SIGTERM stops it cleanly.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, isAlive, readJsonLines, stdioFixture, tempDir, until, writeConfig } from '../helpers/gateway.js';

let dirs: ReturnType<typeof writeConfig>;
let callLog: string;
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  const root = tempDir();
  callLog = `${root}/calls.jsonl`;
  dirs = writeConfig(root, [stdioFixture('fx', callLog)]);
  env = { PATH: process.env.PATH, HOME: root, GATEHOUSE_REGISTRY: dirs.registry, GATEHOUSE_POLICIES: dirs.policies, GATEHOUSE_STATE: dirs.state, GATEHOUSE_LOG_LEVEL: 'warn' };
});

// At most two CLI processes at a time (each costs ~1 s of CPU to start).
let running = 0;
const waiting: Array<() => void> = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** Runs the CLI to completion. */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return slot(() => runNow(args));
}

function runNow(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('gatehouse serve', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('prints the URL and a token command that work; SIGTERM exits 0 and stops the upstream', async () => {
    child = spawn(process.execPath, [CLI, 'serve', '--port', '0'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = child;
    let out = '';
    let err = '';
    proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));

    const ready = await until(() => /then point its MCP client at/.test(out) && out, 'serve to print its start-up report', 45_000).catch((e: unknown) => {
      throw new Error(`${String(e)}\nstdout: ${out}\nstderr: ${err}`);
    });
    const url = /serving MCP at (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(ready)?.[1];
    expect(url).toBeDefined();
    expect(ready).toMatch(/fx\s+stdio\s+ready\s+11/);
    // The state directory here is not the default: the printed command names it, or its token would get 401.
    const tokenCommand = /^\s+(node \S+ token mint --agent \S+ --ttl 8h(?: --\S+ \S+)*)$/m.exec(ready)?.[1];
    expect(tokenCommand).toContain(`--state ${env.GATEHOUSE_STATE}`);
    expect(tokenCommand).toBeDefined();

    // The printed command, run as printed (with the same environment), mints a working token.
    const [, ...args] = (tokenCommand ?? '').split(' ');
    const minted = spawnSync(process.execPath, args, { cwd: ROOT, env, encoding: 'utf8' });
    expect(minted.status).toBe(0);
    const token = minted.stdout.trim();
    expect(token.split('.')).toHaveLength(3);
    expect(minted.stderr).toContain('token for agent "laptop-claude"');

    const client = new Client({ name: 'cli-test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url ?? ''), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    const names = (await client.listTools()).tools.map((x) => x.name);
    expect(names).toContain('fx__echo');
    expect(await client.callTool({ name: 'fx__echo', arguments: { text: 'via cli' } })).toEqual({ content: [{ type: 'text', text: 'via cli' }] });
    await client.close();

    const upstreamPid = readJsonLines(callLog).find((l) => l.tool === 'echo')?.pid as number;
    expect(isAlive(upstreamPid)).toBe(true);
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(isAlive(upstreamPid)).toBe(false);
    expect(err).toContain('SIGTERM: finishing in-flight calls');
  }, 90_000);

  it('--json prints one JSON line with the URL and connector report', async () => {
    const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--json'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<unknown>((r) => proc.once('exit', (code, signal) => r({ code, signal, err: code === 0 ? '' : err })));
    try {
      const line = await until(() => out.includes('\n') && out.split('\n')[0], 'the JSON line', 45_000);
      const report = JSON.parse(line) as { url: string; connectors: Array<{ name: string; status: { state: string } }> };
      expect(report.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
      expect(report.connectors).toEqual([expect.objectContaining({ name: 'fx', status: { state: 'ready' } })]);
    } finally {
      proc.kill('SIGTERM');
    }
    expect(await exited).toEqual({ code: 0, signal: null, err: '' });
  }, 60_000);

  it('invalid configuration exits 2 naming file, line and key', async () => {
    const bad = writeConfig(tempDir(), [{ ...stdioFixture('fx', callLog), comand: 'node' }]);
    const r = await run(['serve', '--port', '0', '--registry', bad.registry]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid configuration');
    expect(r.stderr).toMatch(/fx\.yaml:\d+:\d+: comand: unknown key "comand"/);
  });

  it('a port that is in use exits 2 with a hint', async () => {
    const { createServer } = await import('node:net');
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    try {
      const r = await run(['serve', '--port', String(port), '--state', tempDir()]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`port ${port} on 127.0.0.1 is in use`);
    } finally {
      srv.close();
    }
  });
});

describe.concurrent('usage', { timeout: 60_000 }, () => {
  it('--help on the top level and on every listed command exits 0', async () => {
    const top = await run(['--help']);
    expect(top.code).toBe(0);
    const names = [...top.stdout.split('Commands:\n')[1]!.split('\n\n')[0]!.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1] as string);
    expect(names).toEqual(expect.arrayContaining(['serve', 'token']));
    const runs = await Promise.all([...names.map((n) => [n, '--help']), ['token', 'mint', '--help']].map(async (args) => ({ args, r: await run(args) })));
    for (const { args, r } of runs) {
      expect({ args, code: r.code }).toEqual({ args, code: 0 });
      expect(r.stdout).toMatch(/Usage:\s+gatehouse/);
    }
  });

  it('no command prints usage on stderr and exits 2 (a script forgot the command)', async () => {
    const r = await run([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: gatehouse [options] [command]');
  });

  it.each([
    [['serve', '--bogus'], "gatehouse serve: unknown option '--bogus'\nRun \"gatehouse serve --help\" for usage."],
    [['token', 'mint', '--agent', 'a', '--bogus'], "gatehouse token mint: unknown option '--bogus'"],
    [['frobnicate'], "gatehouse: unknown command 'frobnicate'"],
    [['sevre'], "gatehouse: unknown command 'sevre'\n(Did you mean serve?)"],
    [['serve', '--prot', '80'], "gatehouse serve: unknown option '--prot'\n(Did you mean --port?)"],
    [['serve', '--port', 'eighty'], '--port must be 0-65535'],
    [['token', 'mint'], '--agent NAME is required'],
  ])('%j exits 2 with a message', async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it('token mint --json prints token, agent and expiry', async () => {
    const r = await run(['token', 'mint', '--agent', 'ci-bot', '--ttl', '30m', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { token: string; agent: string; expiresAt: string };
    expect(j.agent).toBe('ci-bot');
    const ms = Date.parse(j.expiresAt) - Date.now();
    expect(ms).toBeGreaterThan(25 * 60_000);
    expect(ms).toBeLessThanOrEqual(30 * 60_000);
  });
});
