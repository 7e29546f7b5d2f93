/**
 * Gatehouse in its own process (like the peers), with policy, durable audit
 * and secret injection on, in front of the bench echo upstream.
 *   node dist/bench/procs/gatehouse.js ROOT UPSTREAM [unpinned | telemetry OTLP_URL]
 * prints one JSON line {url, token[, metricsUrl]}. UPSTREAM: the HTTP echo
 * server's URL, or `stdio:confined` / `stdio:off` for the stdio echo server
 * (procs/echo-stdio.ts) as the gateway's child, under gatehouse-sandbox or not. The secret comes from an in-memory store.
 * `telemetry`: traces to the OTLP/HTTP collector at OTLP_URL (as OTEL_EXPORTER_OTLP_ENDPOINT
 * would set them for `gatehouse serve`) and /metrics on a listener of its own for a scraper.
 */
import { startGateway } from '../../src/app/gateway.js';
import { createLogger } from '../../src/log.js';
import { mintToken } from '../../src/server/tokens.js';
import { BENCH_SECRET, writeGatehouseConfig, type BenchUpstream } from '../lib/gatehouse-config.js';
import { MemorySecretStore } from '../lib/memory-store.js';

const [root, upstreamArg, variant, otlpUrl] = process.argv.slice(2);
if (!root || !upstreamArg || (variant !== undefined && variant !== 'unpinned' && !(variant === 'telemetry' && otlpUrl))) {
  throw new Error('usage: gatehouse.js ROOT (UPSTREAM_URL | stdio:confined | stdio:off) [unpinned | telemetry OTLP_URL]');
}
const upstream: BenchUpstream = upstreamArg === 'stdio:confined' ? { stdio: 'confined' } : upstreamArg === 'stdio:off' ? { stdio: 'off' } : upstreamArg;
if (variant === 'telemetry') process.env.OTEL_EXPORTER_OTLP_ENDPOINT = otlpUrl;
const dirs = writeGatehouseConfig(root, upstream, { unpinned: variant === 'unpinned' });
const gw = await startGateway({
  dirs,
  port: 0,
  logger: createLogger({ level: 'warn', destination: process.stderr }),
  secrets: new MemorySecretStore({ [BENCH_SECRET.name]: BENCH_SECRET.value }),
  upstreamWaitMs: 10_000,
  ...(variant === 'telemetry' ? { metricsListen: { host: '127.0.0.1', port: 0 } } : {}),
});
const token = (await mintToken(gw.keys, 'bench-agent', 3_600_000)).token;
process.stdout.write(JSON.stringify({ url: gw.url, token, ...(gw.metricsUrl !== undefined ? { metricsUrl: gw.metricsUrl } : {}) }) + '\n');
const stop = () => void gw.close(1000).then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
