/**
 * No keychain at all: DBUS_SESSION_BUS_ADDRESS points nowhere (or is unset).
 * Its own file, so its own process: libdbus reads the bus address once per
 * process, so this must be the first keychain access here.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { startGateway, type RunningGateway } from '../../src/app/gateway.js';
import { KeychainStore } from '../../src/secrets/keychain.js';
import { startEchoUpstream } from '../fixtures/echo-upstream.js';
import { dirFlags, runCli, writeTree } from './helpers.js';

describe('keychain not reachable', { timeout: 30_000 }, () => {
  it('no_keychain_fails_closed: the connector is not ready with KEYCHAIN_UNAVAILABLE, and nothing is sent upstream', async () => {
    const echo = await startEchoUpstream();
    const tree = writeTree([{ name: 'echo', kind: 'http', url: echo.url, headers: { Authorization: 'Bearer ${secret:echo-token}' } }]);
    const bus = `unix:path=${join(tree.root, 'no-such-bus')}`;
    const before = process.env.DBUS_SESSION_BUS_ADDRESS;
    process.env.DBUS_SESSION_BUS_ADDRESS = bus;
    let gw: RunningGateway | undefined;
    try {
      const err = await new KeychainStore().get('echo-token').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(GatehouseError);
      expect((err as GatehouseError).code).toBe('KEYCHAIN_UNAVAILABLE');
      expect((err as GatehouseError).message).toContain(`DBUS_SESSION_BUS_ADDRESS=${bus} does not lead to a Secret Service`);

      gw = await startGateway({ dirs: tree.dirs, port: 0, logger: createLogger({ level: 'silent' }), backoffMs: 50, secretPollMs: 200 });
      const st = gw.gateway.report()[0]?.status as { state: string; reason: string; fix: string };
      expect(st.state).toBe('not-ready');
      expect(st.reason).toContain('the OS keychain is unavailable');
      expect(st.reason).toContain('Secret Service');
      expect(st.reason).toContain('gnome-keyring-daemon');
      expect(st.fix).toContain('keychain');
      expect(echo.received).toEqual([]);

      const list = await runCli(['secret', 'list', ...dirFlags(tree.dirs)], { HOME: tree.root, DBUS_SESSION_BUS_ADDRESS: bus });
      expect(list.code).toBe(3);
      expect(list.stderr).toContain('the OS keychain is unavailable');
      const unset = await runCli(['secret', 'check', ...dirFlags(tree.dirs)], { HOME: tree.root });
      expect(unset.code).toBe(3);
      expect(unset.stderr).toContain('DBUS_SESSION_BUS_ADDRESS is not set');
      const set = await runCli(['secret', 'set', 'echo-token', ...dirFlags(tree.dirs)], { HOME: tree.root, DBUS_SESSION_BUS_ADDRESS: bus }, 'a-valid-value-123');
      expect(set.code).toBe(3);
      expect(set.stderr).not.toContain('a-valid-value-123');
    } finally {
      await gw?.close(1_000);
      if (before === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
      else process.env.DBUS_SESSION_BUS_ADDRESS = before;
      await echo.close();
      rmSync(tree.root, { recursive: true, force: true });
    }
  });
});
