/**
 * A Streamable HTTP upstream that goes away and comes back: the gateway must
 * report it cleanly while it is down and use it again once it is back.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnHttpFixture, startTestGateway, until, type HttpFixture, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
let web: HttpFixture;

beforeAll(async () => {
  web = await spawnHttpFixture();
  t = await startTestGateway({ connectors: () => [{ name: 'web', kind: 'http', url: web.url, timeouts: { connect: '2s' } }] });
});
afterAll(async () => {
  await t?.close();
  await web?.close();
});

const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;

describe('HTTP upstream restart', () => {
  it('while the server is down a call is a clean tool error; once it is back (new MCP session) calls work again', async () => {
    const c = await t.client('alice');
    expect(text(await c.callTool({ name: 'web__echo', arguments: { text: 'one' } }))).toBe('one');

    const port = web.port;
    await web.close();
    const down = (await c.callTool({ name: 'web__echo', arguments: { text: 'two' } })) as CallToolResult;
    expect(down.isError).toBe(true);
    expect(text(down)).toMatch(/^connector "web" /);

    // Same URL, new process: the old Mcp-Session-Id is unknown there (404), so the gateway must start a new session.
    web = await spawnHttpFixture({}, port);
    const back = await until(
      async () => {
        // While it reconnects, the tool may be briefly unknown (-32602) or not ready (a tool error).
        const r = (await c.callTool({ name: 'web__echo', arguments: { text: 'three' } }).catch(() => undefined)) as CallToolResult | undefined;
        return r?.isError === true ? undefined : r;
      },
      'the HTTP upstream to be used again',
      15_000,
    );
    expect(text(back)).toBe('three');
  });
});
