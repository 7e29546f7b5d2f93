/** The rug-pull upstream (test/fixtures/rug-pull.mjs) as a registry entry, for the pinning tests. */
import { join } from 'node:path';
import { ROOT, type ConnectorSpec } from './gateway.js';

export const RUG_PULL = join(ROOT, 'test', 'fixtures', 'rug-pull.mjs');

/** Pinned strictly, every change re-listed at once; `callLog` is where the fixture logs each call. */
export function rugPullSpec(callLog: string, extra: Record<string, unknown> = {}, env: Record<string, string> = {}): ConnectorSpec {
  return {
    name: 'rp',
    kind: 'stdio',
    command: 'node',
    args: [RUG_PULL],
    sandbox: 'off',
    // Said here: the test helpers leave connectors unpinned unless told.
    pin: 'strict',
    env: { RUG_PULL_CALL_LOG: callLog, ...env },
    // Every mutation is re-listed at once (the default paces re-lists 2 s apart).
    limits: { relistsPerMinute: 6000 },
    ...extra,
  };
}
