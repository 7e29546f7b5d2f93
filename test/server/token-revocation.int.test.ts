/**
 * Token revocation (issue #12, item 13) through the real CLI (dist/) against a
 * running gateway: the next request of a revoked token is refused, even on a
 * session whose token the gateway remembers; an unreadable list refuses all.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { runCli, type Ran } from '../helpers/cli.js';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RevocationList, revocationsPath } from '../../src/server/revocations.js';
import { mintToken } from '../../src/server/tokens.js';
import { CLI, ROOT, startTestGateway, stdioFixture, tempDir, until, writeConfig, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});
beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
});

function cli(args: string[], dirs: { registry: string; policies: string; state: string }): Promise<Ran> {
  return runCli(args, { cwd: ROOT, env: { HOME: dirs.state, GATEHOUSE_REGISTRY: dirs.registry, GATEHOUSE_POLICIES: dirs.policies, GATEHOUSE_STATE: dirs.state, GATEHOUSE_LOG_LEVEL: 'warn' } });
}

async function connect(gw: TestGateway, token: string): Promise<Client> {
  const client = new Client({ name: 'revoked', version: '1' }, { capabilities: {} });
  await client.connect(new StreamableHTTPClientTransport(new URL(gw.url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

/** A tools/list with this token: its HTTP status and, when refused, the reason. */
async function probe(gw: TestGateway, token: string): Promise<{ status: number; reason: string }> {
  const sid = await gw.openSession(token).catch((e: Error) => e.message);
  if (!/^[0-9a-f-]{36}$/.test(sid)) {
    const m = /^initialize failed: (\d+) (.*)$/s.exec(sid);
    return { status: Number(m?.[1] ?? 0), reason: m?.[2] ?? sid };
  }
  return { status: 200, reason: '' };
}

const start = () => startTestGateway({ connectors: (log) => [stdioFixture('fx', log)] });

describe('gatehouse token revoke', () => {
  it('revoked token: the next request is refused (401) even though it was cached', async () => {
    t = await start();
    const minted = await mintToken(t.gw.keys, 'laptop', 3_600_000);
    const client = await connect(t, minted.token);
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    expect((await client.listTools()).tools.length).toBeGreaterThan(0); // served from the verified-token cache

    const r = await cli(['token', 'revoke', minted.id, '--json'], t.dirs);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ revoked: { jti: minted.id }, via: 'gateway' });

    // The same open session, the next request: 401 with the reason.
    const raw = await t.raw({
      token: minted.token,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': client.transport?.sessionId ?? '', 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
    });
    expect(raw.status).toBe(401);
    expect(raw.headers['www-authenticate']).toMatch(/error="invalid_token".*revoked/);
    await expect(client.listTools()).rejects.toThrow();
    await client.close().catch(() => undefined);

    // Audited, once, by the gateway.
    await until(() => t?.audit().some((a) => a.event === 'token.revoked'), 'the token.revoked record');
    expect(t.audit().filter((a) => a.event === 'token.revoked')).toMatchObject([{ jti: minted.id, via: 'gateway' }]);
    // Another token of the same agent still works.
    expect((await probe(t, await t.mint('laptop'))).status).toBe(200);
  });

  it('revoke --agent: every earlier token of that agent refused, a newly minted one works', async () => {
    t = await start();
    const first = await t.mint('ci');
    const second = await t.mint('ci');
    const bystander = await t.mint('other');
    for (const tok of [first, second, bystander]) expect((await probe(t, tok)).status).toBe(200);

    const r = await cli(['token', 'revoke', '--agent', 'ci'], t.dirs);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/revoked every token of agent "ci" issued before/);

    for (const tok of [first, second]) {
      const p = await probe(t, tok);
      expect(p.status).toBe(401);
      expect(p.reason).toMatch(/every token of agent \\?"ci\\?" issued before/);
    }
    expect((await probe(t, bystander)).status).toBe(200);
    // A token minted afterwards (by the CLI, as an admin would) works.
    const minted = await cli(['token', 'mint', '--agent', 'ci', '--json'], t.dirs);
    expect(minted.code).toBe(0);
    expect((await probe(t, (JSON.parse(minted.stdout) as { token: string }).token)).status).toBe(200);
  });

  it('revocation written to the file while the gateway runs (not through it) is in force on the next request', async () => {
    t = await start();
    const minted = await mintToken(t.gw.keys, 'direct', 3_600_000);
    expect((await probe(t, minted.token)).status).toBe(200);
    new RevocationList(t.dirs.state).revoke({ jti: minted.id });
    expect((await probe(t, minted.token)).status).toBe(401);
  });

  it('corrupt revocation file: tokens refused, clear error', async () => {
    t = await start();
    const token = await t.mint('victim');
    expect((await probe(t, token)).status).toBe(200);
    const file = revocationsPath(t.dirs.state);
    writeFileSync(file, '{"version":1,"tokens":[{"jti":"x"', { mode: 0o600 });
    const p = await probe(t, token);
    expect(p.status).toBe(401);
    expect(p.reason).toMatch(/revocation list cannot be read, so every token is refused/);
    // Every token, even a new one; the admin is told why in the log and the audit.
    expect((await probe(t, await t.mint('someone-else'))).status).toBe(401);
    await until(() => t?.audit().some((a) => a.event === 'token.revocations' && a.ok === false), 'the token.revocations record');
    // A revoke does not paper over it (it would drop what the file revoked).
    const r = await cli(['token', 'revoke', '--agent', 'victim'], t.dirs);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/invalid, nothing was revoked/);
    expect(readFileSync(file, 'utf8')).toBe('{"version":1,"tokens":[{"jti":"x"');
    // Repaired: tokens work again.
    writeFileSync(file, '{"version":1,"tokens":[],"agents":[]}');
    expect((await probe(t, token)).status).toBe(200);
  });

  it('revoke with no gateway running writes the list itself and audits it', async () => {
    const root = tempDir();
    const dirs = writeConfig(root, []);
    const r = await cli(['token', 'revoke', '0b6f3c1e-1111-4222-8333-944455556666', '--json'], dirs);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ via: 'file' });
    expect(JSON.parse(readFileSync(revocationsPath(dirs.state), 'utf8'))).toMatchObject({ tokens: [{ jti: '0b6f3c1e-1111-4222-8333-944455556666' }] });
    const audit = readFileSync(`${dirs.state}/audit/audit.jsonl`, 'utf8');
    expect(audit).toMatch(/"event":"token.revoked"/);
    rmSync(root, { recursive: true, force: true });
  });

  it('usage: neither or both of JTI and --agent is exit 2 with a hint; mint defaults to 8 hours and refuses more than 30 days', async () => {
    const root = tempDir();
    const dirs = writeConfig(root, []);
    const [none, both, long, mint] = await Promise.all([
      cli(['token', 'revoke'], dirs),
      cli(['token', 'revoke', 'abc', '--agent', 'x'], dirs),
      cli(['token', 'mint', '--agent', 'x', '--ttl', '31d'], dirs),
      cli(['token', 'mint', '--agent', 'x', '--json'], dirs),
    ]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/give a token id or --agent NAME/);
    expect(both.code).toBe(2);
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(/between 1s and 30d/);
    const j = JSON.parse(mint.stdout) as { expiresAt: string; id: string };
    const ttl = Date.parse(j.expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(7.9 * 3_600_000);
    expect(ttl).toBeLessThanOrEqual(8 * 3_600_000);
    expect(j.id).toMatch(/^[0-9a-f-]{36}$/);
    rmSync(root, { recursive: true, force: true });
  });
});
