/**
 * tools/list over many tools: the gateway follows the upstream's own pages and
 * serves its catalog in pages, in a stable order, every tool exactly once.
 */
import { McpError, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOOLS_PAGE_SIZE } from '../../src/broker/session-server.js';
import { startTestGateway, stdioFixture, type TestGateway } from '../helpers/gateway.js';

const MANY = 150;
const FIXED = 11; // the fixture's own tools
let t: TestGateway;

beforeAll(async () => {
  t = await startTestGateway({ connectors: (log) => [stdioFixture('many', log, {}, { FIXTURE_MANY_TOOLS: String(MANY) })] });
});
afterAll(() => t?.close());

describe('tools/list pagination', () => {
  it('walks all pages: every tool once, sorted, with page-sized pages', async () => {
    const c = await t.client('alice');
    const pages: Tool[][] = [];
    let cursor: string | undefined;
    do {
      const r = await c.listTools(cursor === undefined ? {} : { cursor });
      pages.push(r.tools);
      cursor = r.nextCursor;
    } while (cursor !== undefined);

    const names = pages.flat().map((x) => x.name);
    expect(names).toHaveLength(MANY + FIXED);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual([...names].sort());
    expect(names).toContain('many__gen_000');
    expect(names).toContain(`many__gen_${String(MANY - 1)}`);
    expect(pages.map((p) => p.length)).toEqual([TOOLS_PAGE_SIZE, MANY + FIXED - TOOLS_PAGE_SIZE]);
  });

  it('is stable: two walks give the same order and the same cursors', async () => {
    const c = await t.client('alice');
    const a = await c.listTools();
    const b = await c.listTools();
    expect(b.tools.map((x) => x.name)).toEqual(a.tools.map((x) => x.name));
    expect(b.nextCursor).toBe(a.nextCursor);
  });

  it('an invalid cursor gets -32602', async () => {
    const c = await t.client('alice');
    const e: unknown = await c.listTools({ cursor: 'not-a-cursor' }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(McpError);
    expect((e as McpError).code).toBe(-32602);
    expect((e as McpError).message).toContain('Invalid cursor');
  });

  it('a generated tool from the upstream’s last page can be called', async () => {
    const c = await t.client('alice');
    expect(await c.callTool({ name: 'many__gen_149', arguments: {} })).toEqual({ content: [{ type: 'text', text: 'called gen_149' }] });
  });
});
