/** KeychainStore against a real Secret Service (gnome-keyring on a private D-Bus). */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatehouseError } from '../../src/errors.js';
import { KeychainStore, unavailableMessage } from '../../src/secrets/keychain.js';
import { StoreResolver } from '../../src/secrets/resolve.js';
import { keychainToolsPresent, startKeychain, type Keychain } from '../helpers/keychain.js';

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GatehouseError) return { code: e.code, message: e.message };
    throw e;
  }
  return { code: 'none', message: '' };
}

describe.skipIf(!keychainToolsPresent())('KeychainStore (real Secret Service)', { timeout: 30_000 }, () => {
  let keychain: Keychain;
  let undo: () => void;
  beforeAll(async () => {
    keychain = await startKeychain();
    undo = keychain.use();
  });
  afterAll(async () => {
    undo?.();
    await keychain?.stop();
    if (keychain) rmSync(keychain.home, { recursive: true, force: true });
  });

  it('set, get, list (names only), delete', async () => {
    const store = new KeychainStore();
    await store.set('alpha-token', 'alpha-value-123');
    await store.set('beta-token', 'beta-value-456');
    expect(await store.get('alpha-token')).toBe('alpha-value-123');
    const names = await store.list();
    expect(names).toEqual(['alpha-token', 'beta-token']);
    expect(JSON.stringify(names)).not.toContain('value');
    expect(await store.delete('alpha-token')).toBe(true);
    expect(await store.delete('alpha-token')).toBe(false);
    expect(await store.get('alpha-token')).toBeNull();
    expect(await store.list()).toEqual(['beta-token']);
  });

  it('the resolver gives a secret only to the connector it is bound to, and sees a rotation made elsewhere', async () => {
    const store = new KeychainStore();
    await store.set('bound-token', 'bound-value-123');
    const resolver = new StoreResolver(store, { bindings: { owner: new Map([['bound-token', 'owner']]) }, cacheMs: 0 });
    expect(await resolver.render('Bearer ${secret:bound-token}', { connector: 'owner', where: 'header Authorization' })).toBe('Bearer bound-value-123');
    const other = await codeOf(resolver.render('Bearer ${secret:bound-token}', { connector: 'intruder', where: 'header Authorization' }));
    expect(other.code).toBe('SECRET_UNSAFE');
    expect(other.message).toContain('not bound to connector "intruder"');
    expect(other.message).not.toContain('bound-value');
    // Another store instance (as another process would) rotates it: the next render sees it.
    await new KeychainStore().set('bound-token', 'rotated-value-456');
    expect(await resolver.render('${secret:bound-token}', { connector: 'owner', where: 'env T', sink: 'env' })).toBe('rotated-value-456');
    expect(resolver.redactor.redactText('bound-value-123 rotated-value-456')).toBe('[REDACTED:bound-token] [REDACTED:bound-token]');
    await store.delete('bound-token');
  });

  it('a secret stored under another service name is not seen', async () => {
    await new KeychainStore({ service: 'not-gatehouse' }).set('alpha-token', 'elsewhere-123');
    expect(await new KeychainStore().get('alpha-token')).toBeNull();
  });

  it('locked_keyring_is_unavailable_not_missing: a wrong unlock password locks it; get throws KEYCHAIN_UNAVAILABLE, never null', async () => {
    await new KeychainStore().set('locked-token', 'locked-value-123');
    await keychain.restartKeyring('the-wrong-password');
    const store = new KeychainStore();
    const present = await codeOf(store.get('locked-token'));
    expect(present.code).toBe('KEYCHAIN_UNAVAILABLE');
    expect(present.message).toContain('is locked');
    expect(present.message).toContain('gnome-keyring-daemon');
    // The dangerous case: a locked keyring answers "no such item" for a lookup; the probe tells it apart.
    const absent = await codeOf(store.get('never-set-token'));
    expect(absent.code).toBe('KEYCHAIN_UNAVAILABLE');
    expect((await codeOf(store.list())).code).toBe('KEYCHAIN_UNAVAILABLE');
    expect((await codeOf(store.set('x-token', 'value-12345'))).code).toBe('KEYCHAIN_UNAVAILABLE');
  });
});

describe('keychain messages per platform', () => {
  it('name the keychain and how to unlock or start it', () => {
    expect(unavailableMessage('darwin', 'User interaction is not allowed.', {})).toContain('security unlock-keychain');
    expect(unavailableMessage('win32', 'Access denied', {})).toContain('Credential Manager');
    expect(unavailableMessage('linux', 'Failed to connect', {})).toContain('DBUS_SESSION_BUS_ADDRESS is not set');
    expect(unavailableMessage('linux', 'Secret Service: unlock prompt was dismissed', { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/x' })).toContain('is locked');
  });
});
