import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import { locate } from '../config/load-yaml.js';

/** Line/column (1-based) of a key path in YAML text, for errors found after the schema check. */
export function positionOf(text: string, path: ReadonlyArray<string | number>): { line: number; col: number } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, keepSourceTokens: false });
  return locate(doc, lc, path);
}

/** Line of each element of a top-level sequence `key` (e.g. the rules), in order. */
export function itemLines(text: string, key: string): number[] {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  const seq = isMap(doc.contents) ? doc.contents.get(key, true) : undefined;
  if (!isSeq(seq)) return [];
  return seq.items.map((it) => lc.linePos((it as { range?: [number, number, number] } | null)?.range?.[0] ?? 0).line);
}
