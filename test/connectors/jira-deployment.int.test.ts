/**
 * A hostile (or broken) Jira site that answers GET /rest/api/2/serverInfo
 * one byte at a time: undici's body timeout never fires (a byte arrives well
 * within it), so only a deadline on the shared lookup ends it, and only a
 * race with each call's own signal lets an aborted call return at once.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { probeBuiltin, type BuiltinRuntime } from '../../src/connectors/index.js';
import { ProviderError } from '../../src/connectors/errors.js';
import { getIssue, jiraApi, type JiraApi } from '../../src/connectors/jira/tools.js';
import { JiraConnectorSchema, type JiraConnectorConfig } from '../../src/registry/builtin-kinds.js';
import { silentLogger } from '../../src/log.js';

const PAT = 'jira-pat-SIMULATED-0123456789';
let server: Server;
let config: JiraConnectorConfig;
/** serverInfo requests seen, and how many of their connections the gateway has closed. */
const seen = { serverInfo: 0, closed: 0 };

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    if (!req.url?.startsWith('/rest/api/2/serverInfo')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errorMessages":["no"]}');
      return;
    }
    seen.serverInfo++;
    res.writeHead(200, { 'content-type': 'application/json' });
    const body = `{"deploymentType":"Server","version":"9.12.0"${' '.repeat(1_000_000)}}`;
    let i = 0;
    const drip = setInterval(() => res.write(body[i++] ?? ''), 20);
    res.on('close', () => {
      clearInterval(drip);
      seen.closed++;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  config = JiraConnectorSchema.parse({ name: 'slowjira', kind: 'jira', baseUrl: `http://127.0.0.1:${port}`, auth: { pat: '${secret:slowjira-pat}' } });
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  seen.serverInfo = 0;
  seen.closed = 0;
});

const runtime = (callTimeoutMs: number): BuiltinRuntime => ({ render: async () => PAT, logger: silentLogger, connectTimeoutMs: 2_000, callTimeoutMs });

/** How long `p` takes to settle, and its error. */
async function settle(p: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const t = performance.now();
  try {
    await p;
    return { ms: performance.now() - t, error: undefined };
  } catch (e) {
    return { ms: performance.now() - t, error: e };
  }
}

async function withApi<T>(callTimeoutMs: number, use: (api: JiraApi) => Promise<T>): Promise<T> {
  const api = jiraApi(config, runtime(callTimeoutMs));
  try {
    return await use(api);
  } finally {
    server.closeAllConnections();
    await api.base.close();
  }
}

describe('a Jira site that trickles serverInfo', () => {
  it('holds no call past its own abort: each aborted call returns at once, the lookup stays shared', () =>
    withApi(30_000, async (api) => {
      const stop = new AbortController();
      setTimeout(() => stop.abort(), 300);
      const [timedOut, cancelled] = await Promise.all([
        settle(getIssue.run(api, { issueKey: 'OPS-1' }, { signal: AbortSignal.timeout(200) })),
        settle(getIssue.run(api, { issueKey: 'OPS-2' }, { signal: stop.signal })),
      ]);
      expect(timedOut.error).toBeInstanceOf(ProviderError);
      expect((timedOut.error as Error).message).toMatch(/Jira could not be reached \(timed out\)/);
      expect(cancelled.error).toBeInstanceOf(ProviderError);
      expect((cancelled.error as Error).message).toBe('the call to Jira was cancelled');
      // Generous bounds: the calls end near 200 and 300 ms, the site would trickle for hours.
      expect(timedOut.ms).toBeLessThan(2_000);
      expect(cancelled.ms).toBeLessThan(2_000);
      expect(seen.serverInfo).toBe(1);
      // A call whose signal has already aborted does not wait at all.
      const done = await settle(api.deployment(AbortSignal.abort()));
      expect(done.error).toBeInstanceOf(ProviderError);
      expect(done.ms).toBeLessThan(100);
    }));

  it("the shared lookup ends at the connector's call timeout even when no caller gives up, and the connection is closed", () =>
    withApi(400, async (api) => {
      const r = await settle(api.deployment());
      expect(r.error).toBeInstanceOf(ProviderError);
      expect((r.error as Error).message).toMatch(/timed out.*This was GET \/rest\/api\/2\/serverInfo/s);
      expect(r.ms).toBeLessThan(3_000);
      await expect.poll(() => seen.closed).toBe(1);
      // A failed ask is not cached: the next call asks again.
      await settle(api.deployment(AbortSignal.timeout(50)));
      expect(seen.serverInfo).toBe(2);
    }));

  it("connector test against it ends at the test's own deadline, not the site's", async () => {
    const r = await settle(probeBuiltin(config, runtime(30_000), AbortSignal.timeout(300)));
    server.closeAllConnections();
    expect(r.error).toBeInstanceOf(ProviderError);
    expect((r.error as Error).message).toMatch(/timed out/);
    expect(r.ms).toBeLessThan(2_000);
  });
});
