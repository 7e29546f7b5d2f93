import { describe, expect, it } from 'vitest';
import { hasNonFinite, nonFinitePath } from '../../src/upstreams/non-finite.js';

describe('nonFinitePath: 1e400 parses to Infinity, which JSON.stringify writes as null', () => {
  it.each([
    ['{"structuredContent":{"v":1e400}}', 'result.structuredContent.v'],
    ['{"content":[{"n":1},{"n":-1e400}]}', 'result.content[1].n'],
    ['{"a":[[[1e999]]]}', 'result.a[0][0][0]'],
  ])('%s → %s', (raw, path) => {
    expect(nonFinitePath(JSON.parse(raw))).toBe(path);
  });

  it('finite results (large, small, nested) pass', () => {
    expect(nonFinitePath(JSON.parse('{"a":1.7976931348623157e308,"b":-5e-324,"c":[{"d":null,"e":"1e400"}]}'))).toBeUndefined();
  });

  it('a result nested 100,000 deep is walked without overflowing the stack', () => {
    let deep: unknown = Infinity;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(hasNonFinite(deep)).toBe(true);
    expect(nonFinitePath(deep)?.endsWith('…')).toBe(true);
  });
});
