/**
 * Finds many literal strings at once in any ASCII letter case, at a cost that
 * does not grow with their number: when the shortest string is M characters,
 * each occurrence covers a text position that is a multiple of M - Q + 1, and
 * only those positions are looked up (by the Q characters there, in a bitmap,
 * then a map), then checked character by character. Secrets are usually
 * 20-40 characters, so about one position in 20 is looked at.
 *
 * A regular expression of a few hundred alternatives was 10-40 times slower on
 * prose: the engine's quick checks stop skipping once the alternatives start
 * with most letters (base32, reversed and re-cased forms do).
 */

/** Length of the key looked up at each sampled position. */
const Q = 4;
/** The shortest string this index takes. */
export const LONG = 8;
/** Bitmap size: 2^20 bits (128 KiB); a few thousand keys fill well under 1%. */
const KEY_BITS = 20;

export interface Found {
  start: number;
  end: number;
  name: string;
}

interface Entry {
  /** The string, ASCII letters lower-cased. */
  folded: string;
  /** Where the key is in it. */
  offset: number;
  name: string;
}

function fold(c: number): number {
  return c >= 65 && c <= 90 ? c | 32 : c;
}

/** A hash of s[i, i+Q). `| 32` lower-cases ASCII letters (and changes some other characters alike on both sides). */
function keyAt(s: string, i: number): number {
  let h = Math.imul((s.charCodeAt(i) | 32) ^ (s.charCodeAt(i + 1) | 32), 0x01000193);
  h = Math.imul(h ^ (s.charCodeAt(i + 2) | 32), 0x01000193);
  h = Math.imul(h ^ (s.charCodeAt(i + 3) | 32), 0x01000193);
  return h >>> (32 - KEY_BITS);
}

function foldedAt(text: string, start: number, folded: string): boolean {
  for (let k = 0; k < folded.length; k++) if (fold(text.charCodeAt(start + k)) !== folded.charCodeAt(k)) return false;
  return true;
}

export class FormIndex {
  private readonly bits = new Uint32Array(1 << (KEY_BITS - 5));
  private readonly entries = new Map<number, Entry[]>();
  /** Sampled positions are this far apart: the shortest string's length - Q + 1. */
  private readonly step: number;

  /** Indexes `forms` (each at least LONG characters), each found as its secret's `name`. */
  constructor(forms: readonly { form: string; name: string }[]) {
    this.step = forms.reduce((min, f) => Math.min(min, f.form.length), Infinity) - Q + 1;
    if (!(this.step >= LONG - Q + 1)) throw new RangeError(`every form must be at least ${LONG} characters`);
    for (const { form, name } of forms) {
      const folded = form.replace(/[A-Z]/g, (c) => c.toLowerCase());
      // The first sampled position inside an occurrence is less than `step` into it: those keys suffice.
      for (let o = 0; o < this.step; o++) {
        const key = keyAt(folded, o);
        this.bits[key >>> 5]! |= 1 << (key & 31);
        const list = this.entries.get(key);
        if (list === undefined) this.entries.set(key, [{ folded, offset: o, name }]);
        else list.push({ folded, offset: o, name });
      }
    }
  }

  /** Appends every occurrence in `text` (overlapping and repeated ones included) to `out`. */
  find(text: string, out: Found[]): void {
    const n = text.length;
    const step = this.step;
    const bits = this.bits;
    for (let i = 0; i + Q <= n; i += step) {
      const key = keyAt(text, i);
      if ((bits[key >>> 5]! & (1 << (key & 31))) === 0) continue;
      for (const e of this.entries.get(key) ?? []) {
        const start = i - e.offset;
        if (start >= 0 && start + e.folded.length <= n && foldedAt(text, start, e.folded)) out.push({ start, end: start + e.folded.length, name: e.name });
      }
    }
  }
}
