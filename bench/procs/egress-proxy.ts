/**
 * The egress proxy in its own process, as the gateway would run it: the real
 * policy loader, the durable audit log in `<state>/audit`, default limits.
 * One unix socket per sandbox (`<sockets>/bench-<i>.sock`): what arrives on
 * it is asked for by agent `bench-<i>`, sandbox `b<i>`, as a relay hands it over.
 *   node dist/bench/procs/egress-proxy.js <state> <sockets> <agents> <http port> <sink port>   prints "READY"
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import { AuditLog } from '../../src/audit/writer.js';
import { createEgressProxy } from '../../src/egress/proxy.js';
import { silentLogger } from '../../src/log.js';
import { loadPolicyFiles, memorySource } from '../../src/policy/load.js';

const [state, sockets, agents, httpPort, sinkPort] = process.argv.slice(2);
if (state === undefined || sockets === undefined || agents === undefined || httpPort === undefined || sinkPort === undefined) {
  process.stderr.write('usage: egress-proxy.js <state> <sockets> <agents> <http port> <sink port>\n');
  process.exit(2);
}

// A policy of a realistic size; loopback is reachable only through a rule naming 127.0.0.1 exactly.
const POLICY = `version: 1
default: deny
rules:
  - id: no-metadata
    match: { egress: { host: metadata.google.internal, port: [80, 443] } }
    effect: deny
  - id: npm-registry
    match: { agent: "bench-*", egress: { host: registry.npmjs.org, port: 443 } }
    effect: allow
  - id: github
    match: { agent: "bench-*", egress: { host: "*.github.com", port: 443 } }
    effect: allow
  - id: bench-loopback
    match: { agent: "bench-*", egress: { host: 127.0.0.1, port: [${httpPort}, ${sinkPort}] } }
    effect: allow
`;
const policy = loadPolicyFiles(['/bench/egress.yaml'], memorySource({ '/bench/egress.yaml': POLICY }));
const audit = await AuditLog.open({ dir: join(state, 'audit'), checkpointIntervalMs: 3_600_000 });
const proxy = createEgressProxy({ policy: () => policy, audit, logger: silentLogger });

for (let i = 1; i <= Number(agents); i++) {
  const who = { caller: { kind: 'agent' as const, name: `bench-${i}` }, sandbox: `b${i}` };
  const server = createServer((s) => proxy.accept(s, who));
  await new Promise<void>((r) => server.listen(join(sockets, `bench-${i}.sock`), r));
}
process.stdout.write('READY\n');
process.on('SIGTERM', () => {
  proxy.close();
  void audit.close().finally(() => process.exit(0));
});
