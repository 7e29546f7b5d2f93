/**
 * Garbage in proxy targets: the parsers never throw, and what they accept is
 * already canonical (parsing the result again gives the same host), so the
 * policy and the connection see one reading of a host.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAuthority, parseHttpUrl } from '../../src/egress/target.js';

const hostish = fc.stringMatching(/^[\][a-zA-Z0-9.:%@_\-x]{0,40}$/);
const authority = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.tuple(hostish, fc.oneof(fc.integer({ min: -5, max: 70_000 }).map(String), fc.string({ maxLength: 6 }))).map(([h, p]) => `${h}:${p}`),
  fc.ipV6().map((a) => `[${a}]:443`),
  fc.ipV4Extended().map((a) => `${a}:80`),
  fc.domain().map((d) => `${d}:443`),
);

describe('target parsers on garbage', () => {
  it('parseAuthority never throws, and an accepted host is canonical', () => {
    fc.assert(
      fc.property(authority, (s) => {
        const r = parseAuthority(s);
        if (!r.ok) return;
        const again = parseAuthority(`${r.value.host.includes(':') ? `[${r.value.host}]` : r.value.host}:${r.value.port}`);
        expect(again).toEqual(r);
        expect(r.value.port).toBeGreaterThanOrEqual(1);
        expect(r.value.port).toBeLessThanOrEqual(65_535);
      }),
      { numRuns: 3_000 },
    );
  });

  it('parseHttpUrl never throws', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 80 }), fc.webUrl(), authority.map((a) => `http://${a}/x`)), (s) => {
        const r = parseHttpUrl(s);
        if (r.ok) expect(r.value.pathAndQuery.startsWith('/')).toBe(true);
      }),
      { numRuns: 3_000 },
    );
  });
});
