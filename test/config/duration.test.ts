import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { durationField, formatDuration, parseDuration, parseRate, requireDuration } from '../../src/config/duration.js';
import { GatehouseError } from '../../src/errors.js';

describe('the one duration grammar', () => {
  it.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['7d', 604_800_000],
    ['1d2h3m4s5ms', 93_784_005],
    [' 8h ', 28_800_000],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '8', '1.5h', '-1h', '8 hours', '1w', 'h', '1h 30m', '99999999999999999999d'])('%j is not a duration', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('a bare number is refused with a hint that names what and the units', () => {
    expect(() => requireDuration('30', '--since')).toThrow(new GatehouseError('USAGE', '--since: invalid duration "30"; a bare number has no unit: write 30s, 30m or 30h'));
    expect(() => requireDuration('soon', 'x', 'CONFIG_INVALID')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('a config field refuses a YAML number (it used to mean milliseconds) and bounds the value', () => {
    const f = durationField({ min: 1_000, max: 86_400_000 });
    expect(f.parse('1h30m')).toBe(5_400_000);
    const issues = (v: unknown) => z.object({ t: f }).safeParse({ t: v }).error?.issues.map((i) => i.message);
    expect(issues(300)).toEqual(['invalid duration 300; a bare number has no unit: write 300s, 300m or 300h']);
    expect(issues('500ms')).toEqual(['must be between 1s and 1d']);
    expect(issues('1d1ms')).toEqual(['must be between 1s and 1d']);
    expect(issues(true)?.length).toBe(1);
  });

  it('rates and the short form', () => {
    expect(parseRate('20/hour')).toEqual({ capacity: 20, perMs: 3_600_000 });
    expect(parseRate('0/hour')).toBeUndefined();
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(250)).toBe('250ms');
  });
});
