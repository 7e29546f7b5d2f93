import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { EXPOSED_NAME, buildCatalog, exposedName, pageOf, type CatalogSource } from '../../src/broker/catalog.js';
import { isExposed } from '../../src/registry/exposure.js';

const tool = (name: string, extra: Partial<Tool> = {}): Tool => ({ name, inputSchema: { type: 'object' }, ...extra });
const src = (connector: string, names: string[], over: Partial<CatalogSource> = {}): CatalogSource => ({
  connector,
  prefix: connector,
  filter: { allow: ['*'], deny: [] },
  tools: names.map((n) => tool(n)),
  ...over,
});

describe('namespacing', () => {
  it('exposes tools as <connector>__<tool> and keeps the upstream name for forwarding', () => {
    const c = buildCatalog([src('github', ['get_issue'])]);
    const e = c.byName.get('github__get_issue');
    expect(e).toMatchObject({ name: 'github__get_issue', connector: 'github', upstreamName: 'get_issue' });
    expect(e?.tool.name).toBe('github__get_issue');
    expect(c.byName.has('get_issue')).toBe(false);
  });

  it('an empty prefix exposes the upstream name as it is', () => {
    expect(exposedName('', 'echo')).toBe('echo');
    expect([...buildCatalog([src('fx', ['echo'], { prefix: '' })]).byName.keys()]).toEqual(['echo']);
  });

  it('does not change the tool object it was given (schemas, annotations pass through)', () => {
    const t = tool('add', { annotations: { readOnlyHint: true }, outputSchema: { type: 'object' } });
    const c = buildCatalog([{ ...src('m', []), tools: [t] }]);
    expect(t.name).toBe('add');
    expect(c.byName.get('m__add')?.tool).toEqual({ ...t, name: 'm__add' });
  });
});

describe('exposure filter (tools.allow / tools.deny globs)', () => {
  const filter = { allow: ['get_*', 'list_*', 'create_issue'], deny: ['get_secret*'] };
  it.each([
    ['get_issue', true],
    ['list_repos', true],
    ['create_issue', true],
    ['create_issue_comment', false],
    ['delete_repo', false],
    ['get_secret_value', false],
    ['GET_issue', false],
  ])('%s exposed: %s', (name, exposed) => {
    expect(isExposed(filter, name)).toBe(exposed);
  });

  it('deny wins over allow', () => {
    expect(isExposed({ allow: ['*'], deny: ['*'] }, 'echo')).toBe(false);
  });

  it('an empty allow list exposes nothing', () => {
    expect(buildCatalog([src('x', ['a', 'b'], { filter: { allow: [], deny: [] } })]).sorted).toEqual([]);
  });

  it('brace choices work ({a,b})', () => {
    expect(isExposed({ allow: ['{echo,add}'], deny: [] }, 'add')).toBe(true);
    expect(isExposed({ allow: ['{echo,add}'], deny: [] }, 'slow')).toBe(false);
  });

  it('filtered-out tools are not problems (they are simply not exposed)', () => {
    const c = buildCatalog([src('gh', ['get_a', 'delete_a'], { filter: { allow: ['get_*'], deny: [] } })]);
    expect([...c.byName.keys()]).toEqual(['gh__get_a']);
    expect(c.problems).toEqual([]);
  });
});

describe('collisions are reported at build time and none of the colliding tools is exposed', () => {
  it('exact collision between two connectors with the same prefix', () => {
    const c = buildCatalog([src('a', ['echo'], { prefix: 'p' }), src('b', ['echo'], { prefix: 'p' })]);
    expect(c.byName.has('p__echo')).toBe(false);
    expect(c.problems).toHaveLength(2);
    expect(c.problems.map((p) => p.connector).sort()).toEqual(['a', 'b']);
    expect(c.problems[0]?.message).toContain('collides with a:echo, b:echo');
  });

  it('collision through the separator (prefix "a" + "b__c" vs prefix "a__b" + "c")', () => {
    const c = buildCatalog([src('x', ['b__c'], { prefix: 'a' }), src('y', ['c'], { prefix: 'a__b' })]);
    expect(c.byName.size).toBe(0);
    expect(c.problems).toHaveLength(2);
  });

  it('case-variant look-alikes (Echo vs echo) within one upstream: both dropped, others kept', () => {
    const c = buildCatalog([src('fx', ['echo', 'Echo', 'add'])]);
    expect([...c.byName.keys()]).toEqual(['fx__add']);
    expect(c.problems.map((p) => p.tool).sort()).toEqual(['Echo', 'echo']);
  });

  it('a duplicated tool name from one upstream is a collision too', () => {
    const c = buildCatalog([src('fx', ['echo', 'echo'])]);
    expect(c.byName.size).toBe(0);
    expect(c.problems).toHaveLength(2);
  });
});

describe('exposed names must match ^[a-zA-Z0-9_-]{1,64}$', () => {
  it('the guard list is not empty', () => {
    expect(EXPOSED_NAME.test('a')).toBe(true);
  });

  it.each([
    ['with a dot', 'get.issue'],
    ['with a space', 'get issue'],
    ['with unicode', 'écho'],
    ['with a newline', 'echo\n'],
  ])('a tool name %s is reported and not exposed', (_what, name) => {
    const c = buildCatalog([src('fx', [name, 'ok'])]);
    expect([...c.byName.keys()]).toEqual(['fx__ok']);
    expect(c.problems).toHaveLength(1);
    expect(c.problems[0]?.message).toContain('is not 1-64 characters of [a-zA-Z0-9_-]');
  });

  it.each([
    ['with a slash (globs never match across "/")', 'a/b', 'fx'],
    ['that is empty, with an empty prefix', '', ''],
  ])('a tool name %s is never exposed', (_what, name, prefix) => {
    const c = buildCatalog([src('fx', [name, 'ok'], { prefix })]);
    expect(c.sorted.map((e) => e.upstreamName)).toEqual(['ok']);
  });

  it('an over-long exposed name (65 characters) is reported; 64 is fine', () => {
    const prefix = 'p'.repeat(10); // "pppppppppp__" is 12 characters
    const ok = 'a'.repeat(52);
    const long = 'b'.repeat(53);
    const c = buildCatalog([src('fx', [ok, long], { prefix })]);
    expect([...c.byName.keys()]).toEqual([`${prefix}__${ok}`]);
    expect(`${prefix}__${ok}`).toHaveLength(64);
    expect(c.problems).toEqual([{ connector: 'fx', tool: long, message: expect.stringContaining('not 1-64 characters') }]);
  });
});

describe('stable order', () => {
  it('sorts by exposed name in code-unit order, whatever the upstream order', () => {
    const a = buildCatalog([src('b', ['z', 'a']), src('a', ['m', 'B'])]).sorted.map((e) => e.name);
    const b = buildCatalog([src('a', ['B', 'm']), src('b', ['a', 'z'])]).sorted.map((e) => e.name);
    expect(a).toEqual(['a__B', 'a__m', 'b__a', 'b__z']);
    expect(b).toEqual(a);
  });
});

describe('pagination', () => {
  const items = Array.from({ length: 250 }, (_, i) => i);

  it('walks every item exactly once, in order, with opaque cursors', () => {
    const seen: number[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const p = pageOf(items, cursor, 100);
      seen.push(...p.page);
      cursor = p.nextCursor;
      pages++;
    } while (cursor !== undefined);
    expect(pages).toBe(3);
    expect(seen).toEqual(items);
  });

  it('no nextCursor when everything fits', () => {
    expect(pageOf([1, 2], undefined, 100)).toEqual({ page: [1, 2] });
    expect(pageOf([], undefined, 100)).toEqual({ page: [] });
  });

  it('a cursor exactly at the end ends the walk', () => {
    const p = pageOf(items.slice(0, 200), undefined, 100);
    const last = pageOf(items.slice(0, 200), p.nextCursor, 100);
    expect(last.nextCursor).toBeUndefined();
  });

  it.each(['', 'garbage', Buffer.from('o:-1').toString('base64url'), Buffer.from('o:1e3').toString('base64url'), Buffer.from('o:9999999999').toString('base64url'), 'o:1'])(
    'an invalid cursor %j is refused',
    (cursor) => {
      expect(() => pageOf(items, cursor, 100)).toThrow(RangeError);
    },
  );

  it('a cursor past the end gives an empty page', () => {
    expect(pageOf(items, Buffer.from('o:999').toString('base64url'), 100)).toEqual({ page: [] });
  });
});
