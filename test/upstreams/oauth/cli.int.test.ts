/**
 * The real `gatehouse connector login` and `connector list` (dist/), against
 * the local authorization server and MCP server, with a real Secret Service:
 * the browser flow's URL followed as a browser would, the device flow's code
 * approved as a user would, the login in the keychain, the list's oauth note.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeychainStore } from '../../../src/secrets/keychain.js';
import { storeLoginStore } from '../../../src/secrets/oauth/store.js';
import { runCli } from '../../helpers/cli.js';
import { keychainToolsPresent, startKeychain, type Keychain } from '../../helpers/keychain.js';
import { tempDir } from '../../helpers/tmp.js';
import { startAuthServer, startMcpResource, type AuthServer, type McpResource } from './servers.js';

let keychain: Keychain;
let undo: () => void;
let as: AuthServer;
let mcp: McpResource;
let root: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  keychain = await startKeychain();
  undo = keychain.use();
  as = await startAuthServer();
  mcp = await startMcpResource(as);
  root = tempDir();
  for (const d of ['registry', 'policies', 'state']) mkdirSync(join(root, d));
  const reg = (name: string, body: object) => writeFileSync(join(root, 'registry', `${name}.yaml`), stringify({ name, kind: 'http', url: mcp.url, ...body }));
  reg('remote', { oauth: { authorizationServer: as.origin } });
  reg('team', { oauth: { authorizationServer: as.origin, per: 'agent' } });
  reg('plain', { headers: {} });
  reg('fresh', { oauth: { authorizationServer: as.origin } });
  env = { ...keychain.env, GATEHOUSE_REGISTRY: join(root, 'registry'), GATEHOUSE_POLICIES: join(root, 'policies'), GATEHOUSE_STATE: join(root, 'state') };
});
afterAll(async () => {
  await mcp?.close();
  await as?.close();
  undo?.();
  await keychain?.stop();
  if (keychain) rmSync(keychain.home, { recursive: true, force: true });
  if (root) rmSync(root, { recursive: true, force: true });
});

describe.skipIf(!keychainToolsPresent())('gatehouse connector login / list (dist)', { timeout: 60_000 }, () => {
  it('login in a browser: prints the sign-in URL, takes the redirect on 127.0.0.1, keeps the login in the keychain and tells a running gateway', async () => {
    let followed = false;
    const r = await runCli(['connector', 'login', 'remote', '--browser', '--no-open'], {
      env,
      onStdout: (out) => {
        const m = /^\s+(http:\/\/127\.0\.0\.1:\d+\/authorize\?\S+)$/m.exec(out);
        if (m?.[1] && !followed) {
          followed = true;
          void fetch(m[1]);
        }
      },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Signed in to remote at http:\/\/127\.0\.0\.1:\d+\/? \(browser flow, client by dynamic-registration\)/);
    expect(r.stdout).toMatch(/oauth: expires in 5\d min, refreshes itself/);
    const login = await storeLoginStore(new KeychainStore(), 'remote').read();
    expect(login?.accessToken).toMatch(/^at-alice-/);
    // The tokens are nowhere but the keychain: not printed, not in the state folder.
    expect(r.stdout).not.toContain(login?.accessToken as string);
    expect(readFileSync(join(root, 'state', 'secrets', 'changed'), 'utf8')).toContain('remote.oauth');
  });

  it('login --device --for AGENT: prints the code, the user approves it elsewhere, the agent\'s own login is kept', async () => {
    as.provider.nextUser = 'bob';
    const r = await runCli(['connector', 'login', 'team', '--device', '--for', 'agent-b'], {
      env,
      onStdout: (out) => {
        const m = /enter the code:\s+([A-Z0-9-]{8})\s/.exec(out);
        if (m?.[1]) as.provider.approveDevice(m[1]);
      },
    });
    as.provider.nextUser = 'alice';
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/open http:\/\/127\.0\.0\.1:\d+\/device on any device/);
    expect(r.stdout).toContain('Signed in to team for agent "agent-b"');
    expect((await storeLoginStore(new KeychainStore(), 'team', 'agent-b').read())?.accessToken).toMatch(/^at-bob-/);
  });

  it('connector list shows the oauth state, and a connector without a login is not ready with the command that fixes it', async () => {
    const r = await runCli(['connector', 'list', '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    const remote = rows.find((x) => x.name === 'remote');
    expect(remote).toMatchObject({ ready: true });
    expect(String(remote?.oauth)).toMatch(/^oauth: expires in 5\d min, refreshes itself$/);
    expect(rows.find((x) => x.name === 'team')).toMatchObject({ ready: true, oauth: 'oauth: per agent (1 logged in: agent-b)' });
    expect(rows.find((x) => x.name === 'fresh')).toMatchObject({ ready: false, reason: 'not logged in', fix: 'gatehouse connector login fresh' });
    const table = await runCli(['connector', 'list'], { env });
    expect(table.stdout).toMatch(/remote\s+http\s+ready \(oauth: expires in 5\d min, refreshes itself\)/);
  });

  it('usage errors name the fix: login on a connector without oauth, --for on a connector with one login', async () => {
    const plain = await runCli(['connector', 'login', 'plain'], { env });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain('add "oauth: {}" to');
    const forOne = await runCli(['connector', 'login', 'remote', '--for', 'agent-a'], { env });
    expect(forOne.code).toBe(2);
    expect(forOne.stderr).toContain('set oauth.per: agent in');
  });
});
