/**
 * Text a connector handles from an agent or a provider, built to make a
 * backtracking regex run in quadratic time: each attack must finish in about
 * the time of a benign input of the same length. A bound of 200 ms (or 50×
 * the benign run on a slow machine) is generous for linear code and far
 * below what the quadratic patterns took (1.2 s for the ADF trim, 0.3 s for
 * the Link header, on a laptop).
 */
import { describe, expect, it } from 'vitest';
import { adf } from '../../src/connectors/jira/adf.js';
import { parseLink } from '../../src/connectors/github/tools.js';

interface Attack {
  name: string;
  attack: () => unknown;
  /** The same code on a benign input of the same length. */
  baseline: () => unknown;
  /** What the attack's input must still come out as. */
  check: (out: unknown) => void;
}

const N = 32_000;
// undici refuses response headers past 16 KiB in all (Node's --max-http-header-size), so a Link header is at most that.
const HEADER = 16_000;
/** The last paragraph (leading blank lines make an empty first one; trailing ones make none). */
const lastParagraph = (out: unknown) => (out as { content: unknown[] }).content.at(-1);
const JUST_X = { type: 'paragraph', content: [{ type: 'text', text: 'x' }] };

const ATTACKS: Attack[] = [
  {
    name: 'an agent sending 32 000 newlines cannot stall the gateway (ADF trim is linear)',
    attack: () => adf(`${'\n'.repeat(N - 1)}x`),
    baseline: () => adf('a'.repeat(N)),
    check: (out) => expect(lastParagraph(out)).toEqual(JUST_X),
  },
  {
    name: 'an agent sending 32 000 carriage returns cannot stall the gateway (turned into newlines, then trimmed linearly)',
    attack: () => adf(`${'\r'.repeat(N - 1)}x`),
    baseline: () => adf('a'.repeat(N)),
    check: (out) => expect(lastParagraph(out)).toEqual(JUST_X),
  },
  {
    name: 'an agent sending 32 000 trailing newlines gets one paragraph back, without an empty break, quickly',
    attack: () => adf(`x${'\n'.repeat(N - 1)}`),
    baseline: () => adf('a'.repeat(N)),
    check: (out) => expect((out as { content: unknown[] }).content).toEqual([JUST_X]),
  },
  {
    name: "a GitHub server sending a Link header of 16 000 '<' cannot stall the gateway (parseLink is linear)",
    attack: () => parseLink('<'.repeat(HEADER)),
    baseline: () => parseLink('a'.repeat(HEADER)),
    check: (out) => expect(out).toEqual({}),
  },
];

/** The fastest of a few runs, in milliseconds (one slow run is the machine, not the code). */
function fastest(run: () => unknown, times = 3): number {
  let best = Infinity;
  for (let i = 0; i < times; i++) {
    const t = performance.now();
    run();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

describe('no connector regex backtracks quadratically on hostile text', () => {
  it('the list of attacks is not empty', () => expect(ATTACKS.length).toBeGreaterThan(0));

  it.each(ATTACKS.map((a) => [a.name, a] as const))('%s', (_name, a) => {
    a.check(a.attack());
    const base = fastest(a.baseline);
    const took = fastest(a.attack);
    expect(took).toBeLessThan(Math.max(200, 50 * base));
  });
});
