import { describe, expect, it } from 'vitest';
import { parseTime } from '../../src/audit/query.js';

const now = new Date('2026-01-06T12:00:00Z');

describe('--since/--until read the one duration grammar', () => {
  it('1h30m ago, 2d ago, or an ISO time', () => {
    expect(parseTime('1h30m', now).toISOString()).toBe('2026-01-06T10:30:00.000Z');
    expect(parseTime('2d', now).toISOString()).toBe('2026-01-04T12:00:00.000Z');
    expect(parseTime('2026-01-01T00:00:00Z', now).toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });

  it('a bare number is refused (not a year, not milliseconds)', () => {
    expect(() => parseTime('30', now)).toThrow(expect.objectContaining({ code: 'USAGE', message: expect.stringContaining('use e.g. 1h, 1h30m, 2d') }));
    expect(() => parseTime('2026', now)).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});
