/**
 * Secrets in metadata and in disguise: a hostile http upstream (real SDK
 * server) gets its credential in the Authorization header and tries to pass it
 * to the agent through its tool list and through encodings a plain search
 * misses. The real gateway (in-process, port 0; the secret comes from an
 * in-memory store, resolver and redactor are the real ones) and an SDK client.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCatalog } from '../../src/broker/catalog.js';
import { silentLogger } from '../../src/log.js';
import { startGateway, type RunningGateway } from '../../src/app/gateway.js';
import { Redactor } from '../../src/secrets/redact.js';
import { mintToken } from '../../src/server/tokens.js';
import { MemoryStore } from '../connectors/helpers.js';
import type { EchoUpstream } from '../fixtures/echo-upstream.js';
import { startHostileUpstream, LEAKS } from '../fixtures/hostile-upstream.js';
import { findLeaks } from './leaks.js';
import { writeTree } from './helpers.js';

const SECRET = `hostile/S3cr3t+${randomBytes(24).toString('base64')}`;
const MARK = '[REDACTED:hostile-token]';

describe('a hostile upstream leaks its credential in metadata and in disguise', { timeout: 30_000 }, () => {
  let upstream: EchoUpstream;
  let tree: ReturnType<typeof writeTree>;
  let gw: RunningGateway;
  let client: Client;
  const logs: unknown[] = [];
  let tools: Tool[] = [];

  const call = async (name: string) => (await client.callTool({ name: `hostile__${name}`, arguments: {} })) as CallToolResult;
  const texts = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : ''));
  const tool = (name: string) => tools.find((t) => t.name === `hostile__${name}`);
  const expectNoLeak = (text: string) => expect(findLeaks(text, SECRET), text.slice(0, 600)).toEqual([]);

  beforeAll(async () => {
    upstream = await startHostileUpstream();
    tree = writeTree([{ name: 'hostile', kind: 'http', url: upstream.url, headers: { Authorization: 'Bearer ${secret:hostile-token}' } }]);
    gw = await startGateway({ dirs: tree.dirs, port: 0, logger: silentLogger, secrets: new MemoryStore({ 'hostile-token': SECRET }), upstreamWaitMs: 15_000, backoffMs: 50 });
    const token = (await mintToken(gw.keys, 'victim-agent', 3_600_000)).token;
    client = new Client({ name: 'victim', version: '1.0.0' }, { capabilities: {} });
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params));
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    tools = (await client.listTools()).tools;
  });

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await gw?.close(2_000);
    await upstream?.close();
  });

  it('the upstream really holds the credential (so a clean answer means something)', () => {
    expect(upstream.received).toContain(`Bearer ${SECRET}`);
    for (const [name, leak] of Object.entries(LEAKS)) expect(findLeaks(leak(SECRET).join('\n'), SECRET), name).not.toEqual([]);
    expect(tools.length).toBe(4 + Object.keys(LEAKS).length);
  });

  it('upstream puts the secret in a tool description (and title)', () => {
    const t = tool('described');
    expect(t?.description).toBe(`Looks things up. Internal key: ${MARK}`);
    expect(t?.title).toBe(`Lookup (${MARK})`);
    expectNoLeak(JSON.stringify(tools));
  });

  it('upstream puts the secret in an inputSchema default (and examples, enum, outputSchema keys, annotations, _meta)', () => {
    const t = tool('schema');
    const key = (t?.inputSchema.properties as Record<string, Record<string, unknown>>).key;
    expect(key?.default).toBe(MARK);
    expect(key?.examples).toEqual([MARK]);
    expect(key?.enum).toEqual([MARK, 'other']);
    expect(key?.description).toBe(`defaults to ${MARK}`);
    expect(Object.keys(t?.outputSchema?.properties ?? {})).toEqual([MARK]);
    expect(t?.annotations).toEqual({ title: `key ${MARK}`, readOnlyHint: true });
    expect(t?._meta).toEqual({ 'hostile/key': MARK });
    expectNoLeak(JSON.stringify(tools));
  });

  it('upstream puts the secret split across two content items', async () => {
    const r = await call('split');
    const parts = texts(r);
    expect(parts).toHaveLength(3);
    expect(parts.join('')).toContain(MARK);
    expectNoLeak(parts.join(''));
    expectNoLeak(JSON.stringify(r));
  });

  it('upstream puts the secret reversed', async () => {
    const r = await call('reversed');
    expect(texts(r)).toEqual([`tnemges: ${MARK}`]);
    expectNoLeak(JSON.stringify(r));
  });

  it('upstream puts the secret upper-cased (and lower-cased)', async () => {
    expect(texts(await call('upper'))).toEqual([`KEY=${MARK}`]);
    expect(texts(await call('lower'))).toEqual([`key=${MARK}`]);
    expectNoLeak(JSON.stringify(await call('upper')) + JSON.stringify(await call('lower')));
  });

  it('upstream puts the secret in base32 (padded, unpadded lower-case, at an offset)', async () => {
    const r = await call('base32');
    for (const t of texts(r)) expect(t).toContain(MARK);
    expectNoLeak(JSON.stringify(r));
  });

  it('upstream puts the secret as colon-separated hex (either case)', async () => {
    const r = await call('colon-hex');
    expect(texts(r)[0]).toBe(`fingerprint ${MARK}`);
    expect(texts(r)[1]).toBe(MARK);
    expectNoLeak(JSON.stringify(r));
  });

  it('upstream puts the secret as hex separated by spaces, dashes, newlines, \\x and 0x prefixes', async () => {
    const r = await call('separated-hex');
    for (const t of texts(r)) expect(t).toBe(MARK);
    expectNoLeak(JSON.stringify(r));
  });

  it('upstream puts the secret in log notifications during a call', async () => {
    const before = logs.length;
    await call('log');
    const sent = logs.slice(before);
    expect(sent).toHaveLength(3);
    expect(JSON.stringify(sent)).toContain(MARK);
    expectNoLeak(JSON.stringify(sent));
  });

  it('upstream names a tool with the secret: the tool is not exposed, and the report does not repeat the name', () => {
    const r = new Redactor();
    const hexName = Buffer.from('tok-1234567890').toString('hex');
    r.learn('t', 'tok-1234567890');
    const c = buildCatalog([{ connector: 'h', prefix: 'h', filter: { allow: ['*'], deny: [] }, tools: [{ name: hexName, inputSchema: { type: 'object' } }, { name: 'fine', inputSchema: { type: 'object' } }] }], (v) => r.redact(v));
    expect([...c.byName.keys()]).toEqual(['h__fine']);
    expect(c.problems).toHaveLength(1);
    expect(JSON.stringify(c.problems)).not.toContain(hexName);
  });

  it('the audit log holds no form of the secret after all of the above', async () => {
    const dir = join(tree.dirs.state, 'audit');
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.jsonl')) : [];
    expect(files.length).toBeGreaterThan(0);
    expectNoLeak(files.map((f) => readFileSync(join(dir, f), 'utf8')).join('\n'));
  });
});
