/**
 * Gatehouse in its own process (like the peers), with policy, durable audit
 * and secret injection on, in front of the bench echo upstream.
 *   node dist/bench/procs/gatehouse.js ROOT UPSTREAM_URL [unpinned]
 * prints one JSON line {url, token}. The secret comes from an in-memory store.
 */
import { startGateway } from '../../src/app/gateway.js';
import { createLogger } from '../../src/log.js';
import { mintToken } from '../../src/server/tokens.js';
import { BENCH_SECRET, writeGatehouseConfig } from '../lib/gatehouse-config.js';
import { MemorySecretStore } from '../lib/memory-store.js';

const [root, upstreamUrl, variant] = process.argv.slice(2);
if (!root || !upstreamUrl || (variant !== undefined && variant !== 'unpinned')) throw new Error('usage: gatehouse.js ROOT UPSTREAM_URL [unpinned]');
const dirs = writeGatehouseConfig(root, upstreamUrl, { unpinned: variant === 'unpinned' });
const gw = await startGateway({
  dirs,
  port: 0,
  logger: createLogger({ level: 'warn', destination: process.stderr }),
  secrets: new MemorySecretStore({ [BENCH_SECRET.name]: BENCH_SECRET.value }),
  upstreamWaitMs: 10_000,
});
const token = (await mintToken(gw.keys, 'bench-agent', 3_600_000)).token;
process.stdout.write(JSON.stringify({ url: gw.url, token }) + '\n');
const stop = () => void gw.close(1000).then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
