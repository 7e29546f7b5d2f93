/**
 * Edges of the agent-facing catalog that mutation testing (npm run
 * test:mutation) found unguarded: a tool whose name holds a secret, forged
 * cursors, and the annotation hints policy may read (untrusted: only booleans
 * pass).
 */
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { buildCatalog, hintsOf, pageOf } from '../../src/broker/catalog.js';
import { Redactor } from '../../src/secrets/redact.js';

const tool = (name: string, extra: Partial<Tool> = {}): Tool => ({ name, inputSchema: { type: 'object' }, ...extra });

describe('an upstream that names a tool after a secret', () => {
  it('the tool is left out and reported (the name is never shown, even redacted)', () => {
    const r = new Redactor();
    r.learn('api-key', 'sk-live-0123456789abcdef');
    const c = buildCatalog(
      [{ connector: 'evil', prefix: 'evil', filter: { allow: ['*'], deny: [] }, tools: [tool('leak_sk-live-0123456789abcdef'), tool('fine', { description: 'uses sk-live-0123456789abcdef' })] }],
      (v) => r.redact(v),
    );
    expect([...c.byName.keys()]).toEqual(['evil__fine']);
    expect(c.byName.get('evil__fine')?.tool.description).toBe('uses [REDACTED:api-key]');
    expect(c.problems).toEqual([{ connector: 'evil', tool: 'leak_[REDACTED:api-key]', message: 'the tool name holds a secret value; the tool is not exposed' }]);
  });
});

describe('cursors', () => {
  const items = ['a', 'b', 'c', 'd'];
  it('a cursor with anything before or after "o:<n>" is refused', () => {
    for (const text of ['xo:1', 'o:1x', ' o:1', 'o:']) {
      expect(() => pageOf(items, Buffer.from(text).toString('base64url'), 2), text).toThrow(new RangeError('invalid cursor'));
    }
    expect(pageOf(items, Buffer.from('o:2').toString('base64url'), 2)).toEqual({ page: ['c', 'd'] });
  });
});

describe('hintsOf (annotations are untrusted: only boolean hints are kept)', () => {
  it('keeps each boolean hint, drops anything else', () => {
    expect(hintsOf(undefined)).toBeUndefined();
    expect(hintsOf({})).toEqual({});
    expect(hintsOf({ readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false, title: 'x' })).toEqual({
      readOnlyHint: true,
      destructiveHint: false,
      idempotentHint: true,
      openWorldHint: false,
    });
    const hostile = { readOnlyHint: 'yes', destructiveHint: 0, idempotentHint: null, openWorldHint: {} } as unknown as Tool['annotations'];
    expect(hintsOf(hostile)).toEqual({});
    expect(hintsOf({ readOnlyHint: false })).toEqual({ readOnlyHint: false });
    expect(hintsOf({ destructiveHint: true })).toEqual({ destructiveHint: true });
    expect(hintsOf({ idempotentHint: false })).toEqual({ idempotentHint: false });
    expect(hintsOf({ openWorldHint: true })).toEqual({ openWorldHint: true });
  });
});
