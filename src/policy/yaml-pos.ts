import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';

/** Line/column (1-based) of a key path in YAML text, for errors found after the schema check. */
export function positionOf(text: string, path: ReadonlyArray<string | number>): { line: number; col: number } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, keepSourceTokens: false });
  const start = (n: unknown): number | undefined => (n as { range?: [number, number, number] } | null)?.range?.[0];
  let node: unknown = doc.contents;
  let offset = start(node) ?? 0;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === seg);
      if (!pair) break;
      offset = start(pair.key) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined) break;
      offset = start(item) ?? offset;
      node = item;
    } else {
      break;
    }
  }
  const p = lc.linePos(offset);
  return { line: p.line, col: p.col };
}

/** Line of each element of a top-level sequence `key` (e.g. the rules), in order. */
export function itemLines(text: string, key: string): number[] {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  const seq = isMap(doc.contents) ? doc.contents.get(key, true) : undefined;
  if (!isSeq(seq)) return [];
  return seq.items.map((it) => lc.linePos((it as { range?: [number, number, number] } | null)?.range?.[0] ?? 0).line);
}
