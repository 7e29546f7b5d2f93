/**
 * A real gateway (startGateway, in-process, port 0) in front of the provider
 * simulators, and an SDK Client that talks to it over Streamable HTTP with a
 * minted agent token. Secrets come from a small in-memory SecretStore: the
 * keychain is not what these tests are about (the remote SaaS is what is simulated).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { stringify } from 'yaml';
import { silentLogger } from '../../src/log.js';
import { startGateway, type RunningGateway } from '../../src/app/gateway.js';
import type { SecretStore } from '../../src/secrets/store.js';
import { loadTokenKeys, mintToken } from '../../src/server/tokens.js';
import { tempDir } from '../helpers/tmp.js';

export class MemoryStore implements SecretStore {
  readonly description = 'an in-memory test store';
  readonly values = new Map<string, string>();
  gets = 0;
  constructor(init: Record<string, string> = {}) {
    for (const [k, v] of Object.entries(init)) this.values.set(k, v);
  }
  async get(name: string) {
    this.gets++;
    return this.values.get(name) ?? null;
  }
  async set(name: string, value: string) {
    this.values.set(name, value);
  }
  async delete(name: string) {
    return this.values.delete(name);
  }
  async list() {
    return [...this.values.keys()].sort();
  }
}

/** Allows every tool of the connectors under test (the policy engine is tested elsewhere). */
export const ALLOW_CONNECTORS = {
  version: 1,
  default: 'deny',
  rules: [{ id: 'connector-tests', match: { tool: '*__*' }, effect: 'allow' }],
};

export interface Harness {
  gw: RunningGateway;
  client: Client;
  store: MemoryStore;
  dirs: { registry: string; policies: string; state: string };
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  /** Every byte the agent received so far (tool lists and results), for leak checks. */
  received(): string;
  close(): Promise<void>;
}

export async function startHarness(connectors: Array<Record<string, unknown> & { name: string }>, secrets: Record<string, string>, policy: object = ALLOW_CONNECTORS): Promise<Harness> {
  const root = tempDir('gatehouse-connectors-');
  const dirs = { registry: join(root, 'registry'), policies: join(root, 'policies'), state: join(root, 'state') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  for (const c of connectors) writeFileSync(join(dirs.registry, `${c.name}.yaml`), stringify(c));
  writeFileSync(join(dirs.policies, 'test.yaml'), stringify(policy));
  const store = new MemoryStore(secrets);
  const gw = await startGateway({ dirs, port: 0, secrets: store, logger: silentLogger, upstreamWaitMs: 5_000, secretCacheMs: 0 });
  const keys = await loadTokenKeys(dirs.state);
  const { token } = await mintToken(keys, 'connector-tester', 3_600_000);
  let seen = '';
  const transport = new StreamableHTTPClientTransport(new URL(gw.url), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
    fetch: async (url, init) => {
      const res = await fetch(url, init);
      const text = await res.clone().text();
      seen += text;
      return res;
    },
  });
  const client = new Client({ name: 'connector-tests', version: '1.0.0' });
  await client.connect(transport);
  return {
    gw,
    client,
    store,
    dirs,
    call: async (name, args = {}) => (await client.callTool({ name, arguments: args })) as CallToolResult,
    received: () => seen,
    close: async () => {
      await client.close().catch(() => undefined);
      await gw.close(1_000);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export function textOf(r: CallToolResult): string {
  return r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}
