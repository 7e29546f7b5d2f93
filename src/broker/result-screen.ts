/**
 * What a tool result tells the model is screened like what a tool
 * description does (issue #16): registry `results.invisible` — `flag` (the
 * default) audits what src/tools/screen.ts finds in the text contents
 * (invisible and bidi characters, ANSI escapes, text addressed to the model,
 * secret paths); `strip` also removes the invisible characters before the
 * agent sees them; `off` does neither. And `limits.toolResultBytes` caps a
 * tool's result below its connector's: over it, a tool error naming the size.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import picomatch from 'picomatch';
import { screenText, stripInvisible, type FindingKind } from '../tools/screen.js';

export type ResultScreening = 'flag' | 'strip' | 'off';

/** The text contents screened: how many findings of each kind, and (strip) how many characters were removed. */
export interface ResultScreen {
  result: CallToolResult;
  findings?: Partial<Record<FindingKind, number>>;
  stripped?: number;
}

export function screenResult(result: CallToolResult, mode: ResultScreening): ResultScreen {
  if (mode === 'off' || !Array.isArray(result.content)) return { result };
  const findings: Partial<Record<FindingKind, number>> = {};
  let stripped = 0;
  let content = result.content;
  for (const [i, c] of result.content.entries()) {
    if (c.type !== 'text' || typeof c.text !== 'string') continue;
    for (const f of screenText(c.text)) findings[f.kind] = (findings[f.kind] ?? 0) + 1;
    if (mode === 'strip') {
      const s = stripInvisible(c.text);
      if (s.removed > 0) {
        stripped += s.removed;
        if (content === result.content) content = [...result.content];
        content[i] = { ...c, text: s.text };
      }
    }
  }
  const out: ResultScreen = { result: content === result.content ? result : { ...result, content } };
  if (Object.keys(findings).length > 0) out.findings = findings;
  if (stripped > 0) out.stripped = stripped;
  return out;
}

const matchers = new WeakMap<Record<string, number>, Array<[(name: string) => boolean, number]>>();

/** The smallest cap of `limits.toolResultBytes` whose glob matches the upstream tool name, if any. */
export function toolResultCap(caps: Record<string, number> | undefined, tool: string): number | undefined {
  if (caps === undefined) return undefined;
  let m = matchers.get(caps);
  if (m === undefined) {
    m = Object.entries(caps).map(([glob, bytes]) => [picomatch(glob, { dot: true }), bytes]);
    matchers.set(caps, m);
  }
  let cap: number | undefined;
  for (const [test, bytes] of m) if (test(tool) && (cap === undefined || bytes < cap)) cap = bytes;
  return cap;
}
