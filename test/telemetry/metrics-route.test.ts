/** --metrics-listen: the address form, and a port already taken. */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../../src/errors.js';
import { listenMetrics, parseListenAddress } from '../../src/server/metrics-route.js';
import { GatewayMetrics } from '../../src/telemetry/metrics.js';

describe('--metrics-listen', () => {
  it('takes HOST:PORT, with IPv6 in brackets', () => {
    expect(parseListenAddress('127.0.0.1:9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseListenAddress('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListenAddress('metrics.internal:9464')).toEqual({ host: 'metrics.internal', port: 9464 });
  });

  it('refuses anything else with the form to use', () => {
    for (const bad of ['9464', ':9464', '127.0.0.1', '127.0.0.1:99999', '::1:9464', '127.0.0.1:94a', 'a b:1']) {
      let err: unknown;
      try {
        parseListenAddress(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(GatehouseError);
      expect((err as GatehouseError).code).toBe('USAGE');
      expect((err as GatehouseError).message).toContain('HOST:PORT');
    }
  });

  it('a port already in use is a USAGE error naming the flag', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      await expect(listenMetrics('127.0.0.1', port, new GatewayMetrics({ processMetrics: false }))).rejects.toThrow(/--metrics-listen: port \d+ on 127\.0\.0\.1 is in use/);
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });
});
