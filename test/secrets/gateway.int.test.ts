/**
 * Secrets end to end, with the real keychain (a private Secret Service), the
 * real gateway (in-process, port 0), real upstreams (an http one echoing its
 * Authorization header, a stdio child printing its env) and the SDK client.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { startGateway, type RunningGateway } from '../../src/app/gateway.js';
import { KeychainStore } from '../../src/secrets/keychain.js';
import { notifySecretChanged } from '../../src/secrets/notice.js';
import { mintToken } from '../../src/server/tokens.js';
import { keychainToolsPresent, startKeychain, type Keychain } from '../helpers/keychain.js';
import { startEchoUpstream, type EchoUpstream } from '../fixtures/echo-upstream.js';
import { findLeaks } from './leaks.js';
import { dirFlags, ENV_SERVER, runCli, until, writeTree } from './helpers.js';

const haveTools = keychainToolsPresent();
const newValue = (tag: string) => `${tag}/S3cr3t+${randomBytes(18).toString('base64')}`;

function textOf(r: unknown): string {
  return JSON.stringify(r);
}

async function connect(gw: RunningGateway): Promise<Client> {
  const token = (await mintToken(gw.keys, 'secrets-tester', 3_600_000)).token;
  const client = new Client({ name: 'secrets-test', version: '1.0.0' }, { capabilities: {} });
  await client.connect(new StreamableHTTPClientTransport(new URL(gw.url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name));
}

describe.skipIf(!haveTools)('secrets through the gateway (real Secret Service)', { timeout: 30_000 }, () => {
  let keychain: Keychain;
  let undoEnv: () => void;
  let echo: EchoUpstream;
  let tree: ReturnType<typeof writeTree>;
  let gw: RunningGateway;
  let client: Client;
  let logFile: string;
  let logStream: WriteStream;
  let cliEnv: Record<string, string>;
  /** Every value a secret had during the run: none may appear in output, audit or log. */
  const used: string[] = [];
  const outFile = () => join(tree.root, 'env-server.jsonl');
  const received = () =>
    existsSync(outFile())
      ? readFileSync(outFile(), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { pid: number; value: string })
      : [];
  const setViaCli = async (name: string, value: string) => {
    used.push(value);
    const r = await runCli(['secret', 'set', name, ...dirFlags(tree.dirs)], cliEnv, `${value}\n`);
    expect(r.code, r.stderr).toBe(0);
  };
  const call = async (name: string): Promise<CallToolResult> => (await client.callTool({ name, arguments: {} })) as CallToolResult;
  const expectNoLeak = (text: string) => {
    for (const v of used) expect(findLeaks(text, v), `secret form found in: ${text.slice(0, 400)}`).toEqual([]);
  };

  beforeAll(async () => {
    keychain = await startKeychain();
    undoEnv = keychain.use();
    process.env.GATEHOUSE_TEST_CANARY = 'gateway-environment-must-not-reach-children';
    echo = await startEchoUpstream();
    tree = writeTree((root) => [
      { name: 'echo', kind: 'http', url: echo.url, headers: { Authorization: 'Bearer ${secret:echo-token}' } },
      { name: 'envsrv', kind: 'stdio', command: 'node', args: [ENV_SERVER], env: { TOKEN: '${secret:envsrv-token}', FIXTURE_OUT: join(root, 'env-server.jsonl') }, sandbox: 'off' },
      { name: 'ghost', kind: 'http', url: echo.url, headers: { 'X-Api-Key': '${secret:ghost-key}' } },
    ]);
    cliEnv = { ...keychain.env };
    await setViaCli('echo-token', newValue('echo'));
    await setViaCli('envsrv-token', newValue('env'));
    logFile = join(tree.root, 'gateway.log');
    logStream = createWriteStream(logFile);
    gw = await startGateway({
      dirs: tree.dirs,
      port: 0,
      logger: createLogger({ destination: logStream, level: 'debug' }),
      backoffMs: 50,
      secretPollMs: 200,
      upstreamWaitMs: 15_000,
    });
    client = await connect(gw);
  });

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await gw?.close(2_000);
    await echo?.close();
    undoEnv?.();
    delete process.env.GATEHOUSE_TEST_CANARY;
    await keychain?.stop();
    if (tree) rmSync(tree.root, { recursive: true, force: true });
  });

  it('an http upstream gets the real credential; the agent sees [REDACTED:echo-token] in every form', async () => {
    const before = echo.received.length;
    const r = await call('echo__headers');
    expect(r.isError).not.toBe(true);
    expect(echo.received.slice(before)).toContain(`Bearer ${used[0]}`);
    const text = textOf(r);
    expect(text).toContain('[REDACTED:echo-token]');
    expectNoLeak(text);
    // each encoding the upstream used was caught, not just the plain one
    const sc = r.structuredContent as { token: Record<string, string> };
    for (const [form, v] of Object.entries(sc.token)) expect(v, form).toContain('[REDACTED:echo-token]');
  });

  it('progress notifications and upstream error messages are redacted too', async () => {
    const messages: string[] = [];
    const r = (await client.callTool({ name: 'echo__progress', arguments: {} }, undefined, { onprogress: (p) => void messages.push(String(p.message)) })) as CallToolResult;
    expect(r.isError).not.toBe(true);
    expect(messages.length).toBeGreaterThanOrEqual(5);
    expect(messages.join('\n')).toContain('[REDACTED:echo-token]');
    expectNoLeak(messages.join('\n'));

    const failed = await call('echo__fail');
    expect(failed.isError).toBe(true);
    expect(textOf(failed)).toContain('credential rejected: Bearer [REDACTED:echo-token]');
    expectNoLeak(textOf(failed));
  });

  it('a stdio child gets its secret in its env, and only its registry env plus PATH, HOME, LANG', async () => {
    const r = await call('envsrv__env');
    expect(r.isError).not.toBe(true);
    const first = (r.content[0] as { text: string }).text;
    const shown = JSON.parse(first) as { pid: number; keys: string[]; env: Record<string, string> };
    expect(shown.keys).toEqual(['FIXTURE_OUT', 'HOME', 'LANG', 'PATH', 'TOKEN']);
    expect(shown.env.TOKEN).toBe('[REDACTED:envsrv-token]');
    expect(first).not.toContain('GATEHOUSE_TEST_CANARY');
    expect(first).not.toContain('DBUS_SESSION_BUS_ADDRESS');
    expectNoLeak(textOf(r));
    expect(received().at(-1)?.value).toBe(used[1]);
  });

  it('rotation, http: the next request carries the new value, without a restart', async () => {
    const rotated = newValue('echo2');
    await setViaCli('echo-token', rotated);
    const before = echo.received.length;
    const r = await call('echo__headers');
    expect(echo.received.slice(before)).toContain(`Bearer ${rotated}`);
    expect(echo.received.slice(before)).not.toContain(`Bearer ${used[0]}`);
    expectNoLeak(textOf(r));
  });

  it('rotation, stdio: the child is restarted with the new value', async () => {
    const oldPid = received().at(-1)?.pid;
    const rotated = newValue('env2');
    await setViaCli('envsrv-token', rotated);
    await until(() => received().at(-1)?.value === rotated, 'the stdio child to restart with the new value');
    const r = await until(async () => {
      const res = await call('envsrv__env').catch(() => undefined);
      if (!res || res.isError) return undefined;
      const shown = JSON.parse((res.content[0] as { text: string }).text) as { pid: number };
      return shown.pid !== oldPid ? res : undefined;
    }, 'a call served by the new child');
    expect(received().at(-1)?.pid).not.toBe(oldPid);
    expectNoLeak(textOf(r));
  });

  it('a missing secret: the connector is not ready, names the secret and the fix; setting it brings it up', async () => {
    const ghost = gw.gateway.report().find((c) => c.name === 'ghost');
    expect(ghost?.status.state).toBe('not-ready');
    const st = ghost?.status as { reason: string; fix: string };
    expect(st.reason).toContain('"ghost-key"');
    expect(st.fix).toBe('gatehouse secret set ghost-key');
    const listed = await client.listTools();
    expect(listed.tools.map((t) => t.name)).not.toContain('ghost__headers');

    await setViaCli('ghost-key', newValue('ghost'));
    await until(() => gw.gateway.report().find((c) => c.name === 'ghost')?.status.state === 'ready', 'ghost to become ready');
  });

  it('header injection: a secret holding CR/LF or NUL is refused, nothing is sent, the value is not echoed', async () => {
    const store = new KeychainStore();
    for (const evil of [`evil-prefix\r\nX-Injected: yes`, `evil-prefix\nX-Injected: yes`, `evil-prefix\0X-Injected: yes`]) {
      await store.set('echo-token', evil);
      notifySecretChanged(tree.dirs.state, 'echo-token');
      const before = echo.received.length;
      const r = await until(async () => {
        const res = await call('echo__headers');
        return res.isError ? res : undefined;
      }, 'the unsafe value to be picked up');
      const text = textOf(r);
      expect(text).toContain('SECRET_UNSAFE');
      expect(text).toContain('echo-token');
      expect(text).not.toContain('X-Injected');
      expect(echo.rawHeaders.slice(before).flat().join('\n')).not.toContain('X-Injected');
    }
    // The CLI refuses such a value outright.
    const r = await runCli(['secret', 'set', 'echo-token', ...dirFlags(tree.dirs)], cliEnv, 'good-looking\r\nX-Injected: yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('carriage return');
    expect(r.stderr).not.toContain('X-Injected');
    await setViaCli('echo-token', newValue('echo3'));
  });

  it('a deleted secret: calls get a tool error naming it and `gatehouse secret set NAME`; nothing is sent', async () => {
    const del = await runCli(['secret', 'delete', 'echo-token', ...dirFlags(tree.dirs)], cliEnv);
    expect(del.code, del.stderr).toBe(0);
    const before = echo.received.length;
    const r = await call('echo__headers');
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain('secret \\"echo-token\\"');
    expect(textOf(r)).toContain('gatehouse secret set echo-token');
    expect(echo.received.length).toBe(before);
  });

  it('the audit log and the gateway log hold no secret byte (files scanned after shutdown)', async () => {
    await client.close();
    await gw.close(2_000);
    await new Promise<void>((r) => logStream.end(r));
    const log = readFileSync(logFile, 'utf8');
    // The stdio child printed its secret on stderr; the gateway logged that line, redacted.
    expect(log).toContain('env-server starting with TOKEN=[REDACTED:envsrv-token]');
    expectNoLeak(log);
    const auditFiles = filesUnder(join(tree.dirs.state, 'audit'));
    expect(auditFiles.length).toBeGreaterThan(0);
    const audit = auditFiles.map((f) => readFileSync(f, 'latin1')).join('\n');
    expect(audit).toContain('secret.set');
    expect(audit).toContain('tools/call');
    expectNoLeak(audit);
    expect(used.length).toBeGreaterThanOrEqual(6);
  });
});
