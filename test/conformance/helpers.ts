/** Shared by the conformance and pass-through tests. */
import { join } from 'node:path';
import { ROOT, spawnListening, type ConnectorSpec, type HttpFixture } from '../helpers/gateway.js';

export const CONFORMANCE_FIXTURE = join(ROOT, 'test', 'fixtures', 'conformance-upstream.mjs');
/** Node >= 22 for the conformance suite, installed by scripts/test-deps.sh (outside node_modules). */
export const NODE22 = join(ROOT, '.cache', 'node22', 'node_modules', 'node', 'bin', 'node');
export const CONFORMANCE_CLI = join(ROOT, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');

/** The conformance fixture as a stdio connector. */
export function stdioConformance(name: string, extra: Record<string, unknown> = {}, env: Record<string, string> = {}): ConnectorSpec {
  return { name, kind: 'stdio', command: 'node', args: [CONFORMANCE_FIXTURE, 'stdio'], env, ...extra };
}

/** Runs the conformance fixture as a Streamable HTTP server; resolves once it listens. */
export function spawnConformanceFixture(env: Record<string, string> = {}): Promise<HttpFixture> {
  return spawnListening(CONFORMANCE_FIXTURE, ['http', '0'], env);
}
