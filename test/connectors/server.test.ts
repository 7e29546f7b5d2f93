/**
 * The connector servers on their own (no gateway, so no redaction behind
 * them): the token must already be absent from everything they return.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { builtinTools, builtinTransport } from '../../src/connectors/index.js';
import { GatehouseError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { GITHUB_TOKEN, startGithubSim, type GithubSim } from './sim/github.js';

let sim: GithubSim;
let client: Client;
let token = GITHUB_TOKEN;
let renders = 0;

beforeAll(async () => {
  sim = await startGithubSim('/api/v3');
  const transport = await builtinTransport(
    { name: 'ghe', kind: 'github', baseUrl: sim.url, token: '${secret:ghe-token}', enabled: true, tools: { allow: ['*'], deny: [] }, timeouts: {}, limits: {}, sampling: 'deny', elicitation: 'deny', pin: 'strict', screen: 'warn', results: { invisible: 'flag' } },
    {
      render: async (t, ctx) => {
        renders++;
        if (token === '') throw new GatehouseError('SECRET_MISSING', `secret "ghe-token" (${ctx.where} of connector "${ctx.connector}") is not set; run: gatehouse secret set ghe-token`);
        return t.replace('${secret:ghe-token}', token);
      },
      logger: silentLogger,
      connectTimeoutMs: 2_000,
      callTimeoutMs: 5_000,
    },
  );
  client = new Client({ name: 't', version: '1' });
  await client.connect(transport);
});
afterAll(async () => {
  await client?.close();
  await sim?.close();
});

const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult;

describe('built-in connector server, without the gateway', () => {
  it('static tool lists match what the server lists', async () => {
    const listed = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(listed).toEqual(builtinTools('github').map((t) => t.name).sort());
    expect(builtinTools('slack')).toHaveLength(5);
    expect(builtinTools('jira')).toHaveLength(6);
  });

  it('works under a GitHub Enterprise base path (/api/v3) and follows Link pages under it', async () => {
    const r = await call('list_issues', { owner: 'octo', repo: 'app', state: 'all', maxItems: 250 });
    expect((r.structuredContent as { items: unknown[] }).items).toHaveLength(250);
    expect(sim.paths()).toEqual(['/api/v3/repos/octo/app/issues', '/api/v3/repos/octo/app/issues', '/api/v3/repos/octo/app/issues']);
  });

  it('renders the credential per request (after policy, inside the handler)', async () => {
    const before = renders;
    await call('get_issue', { owner: 'octo', repo: 'app', issue_number: 1 });
    await call('get_issue', { owner: 'octo', repo: 'app', issue_number: 2 });
    expect(renders - before).toBe(2);
  });

  it('no result or error carries the token, even unredacted', async () => {
    const outs: CallToolResult[] = [];
    for (const inj of [
      { status: 401, body: { message: `Bad credentials for ${GITHUB_TOKEN}` } },
      { status: 403, body: { message: `token ${GITHUB_TOKEN}` } },
      { status: 422, body: { message: 'Validation Failed', errors: [{ message: `Bearer ${GITHUB_TOKEN}` }] } },
      { status: 500, body: `<pre>Authorization: Bearer ${GITHUB_TOKEN}</pre>` },
    ]) {
      sim.inject(inj);
      outs.push(await call('get_issue', { owner: 'octo', repo: 'app', issue_number: 1 }));
    }
    outs.push(await call('get_issue', { owner: 'octo', repo: 'app', issue_number: 1 }));
    for (const o of outs.slice(0, 4)) expect(o.isError).toBe(true);
    expect(JSON.stringify(outs)).not.toContain(GITHUB_TOKEN);
    expect(JSON.stringify(outs)).not.toContain(GITHUB_TOKEN.slice(4, 20));
  });

  it('a missing secret is a tool error naming the fix, and nothing is sent', async () => {
    sim.reset();
    token = '';
    const r = await call('get_issue', { owner: 'octo', repo: 'app', issue_number: 1 });
    token = GITHUB_TOKEN;
    expect(r.isError).toBe(true);
    expect(JSON.stringify(r.content)).toMatch(/gatehouse secret set ghe-token/);
    expect(sim.requests).toHaveLength(0);
  });

  it('its own argument check stands even without the gateway\'s', async () => {
    sim.reset();
    for (const args of [{ owner: '../x', repo: 'app', issue_number: 1 }, { owner: 'octo', repo: '..', issue_number: 1 }, { owner: '-octo', repo: 'app', issue_number: 1 }, { owner: 'octo', repo: 'app', issue_number: '1/../x' }]) {
      const r = await call('get_issue', args);
      expect(r.isError, JSON.stringify(args)).toBe(true);
      expect(JSON.stringify(r.content)).toMatch(/Invalid argument/);
    }
    expect(sim.requests).toHaveLength(0);
  });

  it('an unreachable service is a clear error', async () => {
    const t = await builtinTransport(
      { name: 'dead', kind: 'slack', baseUrl: 'http://127.0.0.1:9/api', token: '${secret:dead-token}', enabled: true, tools: { allow: ['*'], deny: [] }, timeouts: {}, limits: {}, sampling: 'deny', elicitation: 'deny', pin: 'strict', screen: 'warn', results: { invisible: 'flag' } },
      { render: async () => 'xoxb-x', logger: silentLogger, connectTimeoutMs: 1_000, callTimeoutMs: 2_000 },
    );
    const c = new Client({ name: 't', version: '1' });
    await c.connect(t);
    const r = (await c.callTool({ name: 'list_channels', arguments: {} })) as CallToolResult;
    await c.close();
    expect(r.isError).toBe(true);
    expect(JSON.stringify(r.content)).toMatch(/Slack could not be reached \(ECONNREFUSED\)/);
  });
});
