/**
 * A hostile sandboxed agent, run with the real `gatehouse run` attached to a
 * real `gatehouse serve`: it forks processes until the kernel says no, and
 * fills its /tmp until the disk is full. Both are contained (the launcher's
 * RLIMIT_NPROC 1024 and its 256 MiB /tmp), nothing outlives the sandbox, and
 * the gateway keeps serving other agents (and this one) throughout.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenKeys, mintToken } from '../../src/server/tokens.js';
import { CLI, ROOT, stdioFixture, tempDir, writeConfig } from '../helpers/gateway.js';
import { agentClient, auditRecords, descendants, text, type AgentClient } from './helpers.js';

const SDK = join(ROOT, 'node_modules/@modelcontextprotocol/sdk/dist/esm');
const LAUNCHER = join(ROOT, 'native/build/gatehouse-sandbox');

let base: string;
let workspace: string;
let dirs: { registry: string; policies: string; state: string };
let serve: ChildProcess;
let outside: AgentClient;

const AGENT = `
import { spawn } from 'node:child_process';
import { openSync, writeSync, closeSync, statSync, unlinkSync } from 'node:fs';
import { Client } from ${JSON.stringify(pathToFileURL(join(SDK, 'client/index.js')).href)};
import { StreamableHTTPClientTransport } from ${JSON.stringify(pathToFileURL(join(SDK, 'client/streamableHttp.js')).href)};
const mode = process.argv[2];
const out = { mode };
// Holds the abuse until the test says a bystander was served meanwhile (a file in the shared
// workspace): the event, not a fixed time. 60 s is a hang guard only.
const bystanderServed = async () => {
  for (let i = 0; i < 3000; i++) {
    try { statSync('bystander-served-' + mode); return; } catch {}
    await new Promise((r) => setTimeout(r, 20));
  }
  out.timedOut = true;
};
if (mode === 'fork') {
  const kids = [];
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    try {
      const c = spawn('/bin/sleep', ['300'], { stdio: 'ignore' });
      await new Promise((res) => { c.once('spawn', () => { kids.push(c); res(); }); c.once('error', () => { refused++; res(); }); });
    } catch { refused++; }
  }
  out.spawned = kids.length;
  out.refused = refused;
  process.stdout.write('ABUSING\\n');
  await bystanderServed();
  for (const c of kids) c.kill('SIGKILL');
} else {
  const fd = openSync('/tmp/fill', 'w');
  const chunk = Buffer.alloc(1 << 20, 120);
  let written = 0;
  try { for (;;) written += writeSync(fd, chunk); } catch (e) { out.error = e.code; }
  closeSync(fd);
  out.written = written;
  process.stdout.write('ABUSING\\n');
  await bystanderServed();
  unlinkSync('/tmp/fill');
}
const c = new Client({ name: 'abuser', version: '1' });
await c.connect(new StreamableHTTPClientTransport(new URL(process.env.GATEHOUSE_MCP_URL)));
out.after = (await c.callTool({ name: 'fx__echo', arguments: { text: 'still here' } })).content[0].text;
await c.close();
console.log(JSON.stringify(out));
process.exit(0);
`;

beforeAll(async () => {
  base = tempDir('gh-rel-sandbox-');
  workspace = join(base, 'ws');
  mkdirSync(workspace);
  writeFileSync(join(workspace, 'abuse.mjs'), AGENT);
  dirs = writeConfig(base, [stdioFixture('fx', join(base, 'calls.jsonl'))]);
  serve = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--registry', dirs.registry, '--policies', dirs.policies], {
    env: { PATH: process.env.PATH ?? '', HOME: base, GATEHOUSE_STATE: dirs.state, GATEHOUSE_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    serve.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /serving MCP at (http:\/\/\S+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    serve.once('exit', (c) => reject(new Error(`serve exited ${c}`)));
  });
  const keys = await loadTokenKeys(dirs.state);
  outside = await agentClient(url, (await mintToken(keys, 'bystander', 3_600_000)).token);
});

afterAll(async () => {
  await outside?.close();
  serve?.kill('SIGTERM');
  await new Promise((r) => (serve?.exitCode !== null ? r(undefined) : serve.once('exit', r)));
  rmSync(base, { recursive: true, force: true });
});

/** Runs the abusive agent; while it abuses, a bystander keeps calling the gateway. */
async function abuse(mode: 'fork' | 'fill'): Promise<{ result: Record<string, unknown>; bystander: number[]; code: number | null }> {
  const run = spawn(process.execPath, [CLI, 'run', '--agent', `abuser-${mode}`, '--workspace', workspace, '--ro', ROOT, '--registry', dirs.registry, '--policies', dirs.policies, '--', process.execPath, 'abuse.mjs', mode], {
    env: { PATH: process.env.PATH ?? '', HOME: base, GATEHOUSE_STATE: dirs.state },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let abusing = false;
  run.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes('ABUSING')) abusing = true;
  });
  run.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => run.once('close', (c) => r(c)));
  let done = false;
  void exited.then(() => (done = true));
  const bystander: number[] = [];
  const killer = setTimeout(() => run.kill('SIGKILL'), 100_000);
  while (!done) {
    // Only a call made after the box reached its limit counts (it is then held there until told).
    const duringAbuse = abusing;
    const t0 = performance.now();
    expect(text(await outside.client.callTool({ name: 'fx__echo', arguments: { text: 'bystander' } }))).toBe('bystander');
    if (duringAbuse) {
      bystander.push(performance.now() - t0);
      // The host can still start processes while the box is at its limit.
      expect(spawnSync('/bin/true').status).toBe(0);
      writeFileSync(join(workspace, `bystander-served-${mode}`), '');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  clearTimeout(killer);
  const code = await exited;
  const line = stdout.trim().split('\n').at(-1) ?? '{}';
  let result: Record<string, unknown> = {};
  try {
    result = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new Error(`agent output: ${stdout}\n${stderr}`);
  }
  return { result, bystander, code };
}

describe.skipIf(process.platform !== 'linux' || spawnSync(LAUNCHER, ['--version']).status !== 0)('a hostile sandboxed agent (gatehouse run)', { timeout: 120_000 }, () => {
  it('forking thousands of processes stops at the box’s limit; nothing outlives the box; the gateway serves throughout', async () => {
    const { result, bystander, code } = await abuse('fork');
    console.log(`[sandbox] fork: ${JSON.stringify(result)}; bystander calls during the abuse: ${bystander.length}, max ${Math.round(Math.max(...bystander))} ms`);
    expect(code).toBe(0);
    expect(result.timedOut).toBeUndefined();
    expect(result.spawned).toBeGreaterThan(100);
    expect(result.spawned).toBeLessThan(1024);
    expect(result.refused).toBeGreaterThan(0);
    expect(result.after).toBe('still here');
    expect(bystander.length).toBeGreaterThan(0);
    expect(descendants(serve.pid).filter((p) => p.cmdline.includes('sleep 300'))).toEqual([]);
    expect(descendants().filter((p) => p.cmdline.includes('sleep 300'))).toEqual([]);
    const calls = auditRecords(dirs.state).filter((r) => r.event === 'tools/call' && r.agent === 'abuser-fork');
    expect(calls.at(-1)).toMatchObject({ outcome: 'ok' });
  });

  it('filling /tmp stops at the box’s 256 MiB (ENOSPC) without touching the host; the gateway serves throughout', async () => {
    const { result, bystander, code } = await abuse('fill');
    console.log(`[sandbox] fill: ${JSON.stringify(result)}; bystander calls during the abuse: ${bystander.length}, max ${Math.round(Math.max(...bystander))} ms`);
    expect(code).toBe(0);
    expect(result.timedOut).toBeUndefined();
    expect(result.error).toBe('ENOSPC');
    expect(result.written).toBeLessThanOrEqual(256 * 2 ** 20);
    expect(result.written).toBeGreaterThan(128 * 2 ** 20);
    expect(result.after).toBe('still here');
    expect(bystander.length).toBeGreaterThan(0);
    const calls = auditRecords(dirs.state).filter((r) => r.event === 'tools/call' && r.agent === 'abuser-fill');
    expect(calls.at(-1)).toMatchObject({ outcome: 'ok' });
  });
});
