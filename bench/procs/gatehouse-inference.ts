/**
 * Gatehouse in its own process carrying model calls: one `kind: inference`
 * provider (api anthropic) in front of the bench simulator, its key from an
 * in-memory secret store, a policy that allows models, durable audit.
 *   node dist/bench/procs/gatehouse-inference.js ROOT PROVIDER_URL AGENTS
 * prints one JSON line {base, tokens}: base is …/llm/anthropic, one token per
 * agent bench-0 … bench-(AGENTS-1).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createLogger } from '../../src/log.js';
import { startGateway } from '../../src/app/gateway.js';
import { mintToken } from '../../src/server/tokens.js';
import { benchDirs } from '../lib/gatehouse-config.js';
import { MemorySecretStore } from '../lib/memory-store.js';
import { BENCH_PROVIDER_KEY } from '../lib/model-server.js';

const PROVIDER_KEY = { name: 'anthropic-key', value: BENCH_PROVIDER_KEY };

const [root, providerUrl, agentsArg] = process.argv.slice(2);
if (!root || !providerUrl) throw new Error('usage: gatehouse-inference.js ROOT PROVIDER_URL [AGENTS]');
const agents = Math.max(1, Number(agentsArg ?? 1));
const dirs = benchDirs(root);
writeFileSync(
  join(dirs.registry, 'anthropic.yaml'),
  stringify({
    name: 'anthropic',
    description: 'bench provider simulator',
    kind: 'inference',
    api: 'anthropic',
    url: providerUrl,
    headers: { 'x-api-key': `\${secret:${PROVIDER_KEY.name}}` },
    models: { allow: ['claude-*'], deny: ['claude-*-preview'] },
  }),
);
// A policy of a realistic size: an agent-scoped deny before the allow every call ends on.
writeFileSync(
  join(dirs.policies, 'bench.yaml'),
  stringify({
    version: 1,
    default: 'deny',
    rules: [
      { id: 'no-opus-for-interns', match: { agent: 'intern-*', model: '*opus*' }, effect: 'deny' },
      { id: 'models', match: { model: '*' }, effect: 'allow' },
    ],
  }),
);
const gw = await startGateway({
  dirs,
  port: 0,
  logger: createLogger({ level: 'warn', destination: process.stderr }),
  secrets: new MemorySecretStore({ [PROVIDER_KEY.name]: PROVIDER_KEY.value }),
  upstreamWaitMs: 1000,
});
const tokens: string[] = [];
for (let i = 0; i < agents; i++) tokens.push((await mintToken(gw.keys, `bench-${i}`, 3_600_000)).token);
process.stdout.write(JSON.stringify({ base: `http://127.0.0.1:${gw.port}/llm/anthropic`, tokens }) + '\n');
const stop = () => void gw.close(1000).then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
