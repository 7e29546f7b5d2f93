/**
 * The keychain goes away mid-run: the gnome-keyring daemon of a private
 * Secret Service is stopped while the gateway serves. Calls that need a secret
 * fail closed (KEYCHAIN_UNAVAILABLE, nothing sent upstream, audited), a
 * connector without secrets is unaffected, and everything comes back once the
 * keyring is running again.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeychainStore } from '../../src/secrets/keychain.js';
import { keychainToolsPresent, startKeychain, type Keychain } from '../helpers/keychain.js';
import { readJsonLines, spawnHttpFixture, startTestGateway, stdioFixture, tempDir, until, type HttpFixture, type TestGateway } from '../helpers/gateway.js';
import { agentClient, descendants, errCode, text, verifyChain, type AgentClient } from './helpers.js';

const haveTools = keychainToolsPresent();

describe.skipIf(!haveTools)('keychain becoming unavailable mid-run', { timeout: 60_000 }, () => {
  let keychain: Keychain;
  let undoEnv: () => void;
  let web: HttpFixture;
  let webLog: string;
  let t: TestGateway;
  let alice: AgentClient;
  const values = { web: 'web-S3cr3t-value-1234567890', st: 'st-S3cr3t-value-0987654321' };

  beforeAll(async () => {
    keychain = await startKeychain();
    undoEnv = keychain.use();
    const store = new KeychainStore();
    await store.set('web-token', values.web);
    await store.set('st-token', values.st);
    webLog = join(tempDir('gh-kc-'), 'web.jsonl');
    web = await spawnHttpFixture({ FIXTURE_CALL_LOG: webLog });
    t = await startTestGateway({
      connectors: (log) => [
        { name: 'web', kind: 'http', url: web.url, headers: { Authorization: 'Bearer ${secret:web-token}' } },
        stdioFixture('st', log, {}, { TOKEN: '${secret:st-token}' }),
        stdioFixture('plain', log),
      ],
      runtime: { secretCacheMs: 100, secretPollMs: 200 },
    });
    alice = await agentClient(t.url, await t.mint('alice'));
  });

  afterAll(async () => {
    await alice?.close();
    await t?.close();
    await web?.close();
    undoEnv?.();
    await keychain?.stop();
  });

  const status = (n: string) => t.gw.gateway.report().find((r) => r.name === n)?.status as { state: string; fix?: string; reason?: string } | undefined;
  const call = (name: string, args: Record<string, unknown>) => alice.client.callTool({ name, arguments: args }).catch((e: unknown) => ({ thrown: String(e) }));

  it('fails closed while the keyring is down, and recovers when it is back', async () => {
    expect(text(await call('web__echo', { text: 'before' }))).toBe('before');
    expect(text(await call('st__echo', { text: 'before' }))).toBe('before');

    const daemon = descendants().find((p) => p.cmdline.includes('gnome-keyring-daemon'));
    expect(daemon).toBeDefined();
    process.kill(daemon?.pid ?? 0, 'SIGTERM');
    await until(() => !descendants().some((p) => p.pid === daemon?.pid), 'the keyring daemon to stop');

    // HTTP: the header is rendered per request; with the keychain gone the call is refused before anything is sent.
    // (Within secretCacheMs a value read just before is still used: wait for the first refusal.)
    await until(async () => errCode(await call('web__echo', { text: 'while down?' })) === 'KEYCHAIN_UNAVAILABLE', 'the http call to fail closed');
    const sentBefore = readJsonLines(webLog).length;
    const down = await call('web__echo', { text: 'while down' });
    expect(errCode(down)).toBe('KEYCHAIN_UNAVAILABLE');
    expect(text(down)).toMatch(/the OS keychain is unavailable/);
    expect(readJsonLines(webLog).length).toBe(sentBefore);
    expect(t.audit().filter((a) => a.event === 'tools/call' && a.tool === 'web__echo').at(-1)).toMatchObject({ outcome: 'error', error: { code: 'KEYCHAIN_UNAVAILABLE' } });

    // stdio: the poll notices; the child is restarted and cannot get its secret: not ready, with the fix.
    await until(() => status('st')?.state === 'not-ready', 'st to be not ready');
    expect(status('st')?.fix).toMatch(/keychain/);
    const stDown = await call('st__echo', { text: 'while down' });
    expect(JSON.stringify(stDown)).toMatch(/Unknown tool|not ready|KEYCHAIN/);

    // A connector without secrets does not care.
    expect(text(await call('plain__echo', { text: 'unaffected' }))).toBe('unaffected');

    await keychain.restartKeyring('test-password');
    await until(async () => text(await call('web__echo', { text: 'back' })) === 'back', 'http to recover', 20_000);
    await until(() => status('st')?.state === 'ready', 'st to recover', 20_000);
    expect(text(await call('st__echo', { text: 'back' }))).toBe('back');

    // No secret value in the audit log, and the chain verifies.
    const audit = JSON.stringify(t.audit());
    expect(audit).not.toContain(values.web);
    expect(audit).not.toContain(values.st);
    expect((await verifyChain(t.dirs.state)).problems).toEqual([]);
  });
});
