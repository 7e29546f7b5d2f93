/**
 * The console's page is a static browser file: it carries its own copy of
 * src/config/duration.ts's formatDuration (the grant bounds it shows). This
 * runs the page's block (between its <duration> markers) in Node and checks it
 * against the gateway's over durations from 0 ms to years, so the page never
 * shows a bound other than the one the gateway enforces.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assetsDir } from '../../src/console/assets.js';
import { formatDuration } from '../../src/config/duration.js';

function pageFormatDuration(): (ms: number) => string {
  const js = readFileSync(join(assetsDir(), 'console.js'), 'utf8');
  const start = js.indexOf('// <duration>');
  const end = js.indexOf('// </duration>');
  expect(start).toBeGreaterThan(0);
  expect(end).toBeGreaterThan(start);
  return new Function(`${js.slice(start, end)}\nreturn formatDuration;`)() as (ms: number) => string;
}

describe("the console's copy of formatDuration", () => {
  it('the_page_formats_every_grant_bound_as_the_gateway_does', () => {
    const page = pageFormatDuration();
    for (const ms of [0, 1, 999, 1000, 1499, 1500, 59_999, 60_000, 90_000, 3_600_000, 3_661_000, 86_400_000, 90_061_000]) expect(page(ms)).toBe(formatDuration(ms));
    fc.assert(fc.property(fc.integer({ min: 0, max: 400 * 86_400_000 }), (ms) => page(ms) === formatDuration(ms)));
  });
});
