/**
 * `gatehouse serve` says when an upstream is slow to start (what it waits
 * for) and prints one line whenever a call waits for approval, with the
 * command that decides it. Real CLI process, real upstreams, real MCP client.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { describe, expect, it } from 'vitest';
import { approvalLine, slowUpstreamLines } from '../../src/cli/serve-notices.js';
import type { Gateway } from '../../src/broker/gateway.js';
import type { PendingApproval } from '../../src/policy/approvals.js';
import { loadTokenKeys, mintToken } from '../../src/server/tokens.js';
import { CLI, ROOT, stdioFixture, tempDir, until, writeConfig } from '../helpers/gateway.js';

const SLOW = join(ROOT, 'test', 'fixtures', 'slow-start.mjs');

const POLICY = {
  version: 1,
  default: 'deny',
  rules: [{ id: 'echo-asks', match: { tool: 'fx__echo' }, effect: 'ask', ask: { timeout: '2m' } }],
};

describe('serve notices', () => {
  it('an upstream not ready after 5 s is named with what it waits for; a call waiting for approval prints the command that approves it (with --state)', async () => {
    const root = tempDir();
    const dirs = writeConfig(
      root,
      [stdioFixture('fx', join(root, 'calls.jsonl')), { name: 'late', kind: 'stdio', command: 'node', args: [SLOW, 'stdio'], env: { FIXTURE_START_DELAY_MS: '999999999' } }],
      POLICY,
    );
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--registry', dirs.registry, '--policies', dirs.policies, '--state', dirs.state], {
      env: { PATH: process.env.PATH ?? '', HOME: root },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    try {
      const slow = await until(() => /upstream "late" is not ready after 5s: [^\n]*\n/.exec(err)?.[0], 'the slow-start notice', 30_000);
      expect(slow).toContain(`still waiting for "node ${SLOW} stdio" to answer initialize`);
      expect(err).not.toMatch(/upstream "fx" is not ready/);
      const url = await until(() => /serving MCP at (http:\/\/\S+)/.exec(out)?.[1], 'the banner', 30_000);
      const token = (await mintToken(await loadTokenKeys(dirs.state), 'alice', 600_000)).token;
      const client = new Client({ name: 't', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      void client.callTool({ name: 'fx__echo', arguments: { text: 'hi' } }).catch(() => undefined);
      const line = await until(() => /approval needed: [^\n]*\n/.exec(err)?.[0], 'the approval notice');
      expect(line).toMatch(new RegExp(`agent "alice" called fx__echo \\(id (\\S+), rule echo-asks, expires [^)]+\\); approve: .* approvals approve \\1 --registry ${dirs.registry} --policies ${dirs.policies} --state ${dirs.state}  deny: `));
      await client.close();
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });
});

describe('serve notices (the lines)', () => {
  const approval: PendingApproval = { id: 'a1', agent: 'bob', connector: 'gh', tool: 'gh__merge', upstreamTool: 'merge', ruleId: null, message: '', args: {}, requestedAt: 't0', expiresAt: 't1' };

  it('one line for a call that starts waiting; none for decisions and other events', () => {
    expect(approvalLine({ type: 'requested', approval }, 'gatehouse')).toBe('approval needed: agent "bob" called gh__merge (id a1, rule (default), expires t1); approve: gatehouse approvals approve a1  deny: gatehouse approvals deny a1');
    expect(approvalLine({ type: 'approved', approval, by: 'x' }, 'gatehouse')).toBeUndefined();
    expect(approvalLine({ type: 'timed_out', approval }, 'gatehouse')).toBeUndefined();
  });

  it('a failed upstream that retries is named with its reason; ready and not-ready ones are not', () => {
    const gateway = {
      opts: { registry: { connectors: [{ name: 'a', kind: 'http', url: 'https://x.example/mcp' }] } },
      report: () => [
        { name: 'a', kind: 'http', status: { state: 'failed', reason: 'connect ECONNREFUSED', retryInMs: 2500 } },
        { name: 'b', kind: 'stdio', status: { state: 'ready' } },
        { name: 'c', kind: 'stdio', status: { state: 'not-ready', reason: 'secret not set', fix: 'x' } },
      ],
    } as unknown as Gateway;
    expect(slowUpstreamLines(gateway)).toEqual(['upstream "a" is not ready after 5s: connect ECONNREFUSED; retrying in 3s']);
  });

  it('an http upstream still starting names its URL', () => {
    const gateway = { opts: { registry: { connectors: [{ name: 'a', kind: 'http', url: 'https://x.example/mcp' }] } }, report: () => [{ name: 'a', kind: 'http', status: { state: 'starting' } }] } as unknown as Gateway;
    expect(slowUpstreamLines(gateway)[0]).toBe('upstream "a" is not ready after 5s: still waiting for https://x.example/mcp to answer initialize and tools/list; its tools appear once it answers');
  });
});


