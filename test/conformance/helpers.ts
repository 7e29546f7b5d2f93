/** Shared by the conformance and pass-through tests. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, type ConnectorSpec, type HttpFixture } from '../helpers/gateway.js';

export const CONFORMANCE_FIXTURE = join(ROOT, 'test', 'fixtures', 'conformance-upstream.mjs');
/** Node 22 from the npm package `node` (the conformance CLI needs Node >= 22). */
/** Node >= 22 for the conformance suite, installed by scripts/test-deps.sh (outside node_modules). */
export const NODE22 = join(ROOT, '.cache', 'node22', 'node_modules', 'node', 'bin', 'node');
export const CONFORMANCE_CLI = join(ROOT, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');

/** The conformance fixture as a stdio connector. */
export function stdioConformance(name: string, extra: Record<string, unknown> = {}, env: Record<string, string> = {}): ConnectorSpec {
  return { name, kind: 'stdio', command: 'node', args: [CONFORMANCE_FIXTURE, 'stdio'], env, ...extra };
}

/** Runs the conformance fixture as a Streamable HTTP server; resolves once it listens. */
export function spawnConformanceFixture(env: Record<string, string> = {}): Promise<HttpFixture> {
  const child = spawn(process.execPath, [CONFORMANCE_FIXTURE, 'http', '0'], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const onExit = (code: number | null) => reject(new Error(`conformance fixture exited (${code}) before listening: ${out}`));
    child.once('exit', onExit);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const m = /LISTENING (\d+)/.exec(out);
      if (!m) return;
      child.off('exit', onExit);
      const port = Number(m[1]);
      resolve({
        url: `http://127.0.0.1:${port}/mcp`,
        port,
        child,
        close: () =>
          new Promise<void>((r) => {
            if (child.exitCode !== null || child.signalCode !== null) return r();
            child.once('exit', () => r());
            child.kill('SIGKILL');
          }),
      });
    });
  });
}
