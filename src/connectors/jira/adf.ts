/**
 * Atlassian Document Format (Jira Cloud v3 rich text), both ways, as plain
 * text: https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/
 */
type J = Record<string, unknown>;
const str = (x: unknown): string => (typeof x === 'string' ? x : '');
const obj = (x: unknown): J => (x && typeof x === 'object' && !Array.isArray(x) ? (x as J) : {});
const nodes = (x: unknown): J[] => (Array.isArray(x) ? (x.filter((i) => i && typeof i === 'object') as J[]) : []);

/** One paragraph's lines: text nodes with a `hardBreak` between them (ADF text nodes may not be empty). */
function inline(para: string): J[] {
  const out: J[] = [];
  para.split('\n').forEach((line, i) => {
    if (i > 0) out.push({ type: 'hardBreak' });
    if (line !== '') out.push({ type: 'text', text: line });
  });
  return out;
}

/**
 * `text` without its trailing newlines, by a loop: `/\n+$/` backtracks from
 * every newline in a run that is not at the end (quadratic, seconds for an
 * agent's 32 000 newlines followed by one letter).
 */
function trimTrailingNewlines(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x0a) end--;
  return text.slice(0, end);
}

/** Plain text as an ADF document: a blank line separates paragraphs, a single newline is a `hardBreak`. */
export function adf(text: string): J {
  // Trailing newlines would end the last paragraph with empty breaks.
  const t = trimTrailingNewlines(text.replace(/\r\n?/g, '\n'));
  return { type: 'doc', version: 1, content: t.split(/\n{2,}/).map((para) => ({ type: 'paragraph', content: inline(para) })) };
}

/** YYYY-MM-DD of a `date` node's timestamp (milliseconds since the epoch, UTC). */
function day(ts: unknown): string {
  const n = typeof ts === 'number' ? ts : /^-?\d{1,16}$/.test(str(ts)) ? Number(ts) : NaN;
  return Number.isFinite(n) && Math.abs(n) < 8.64e15 ? new Date(n).toISOString().slice(0, 10) : '';
}

const BLOCKS = new Set(['paragraph', 'heading', 'codeBlock', 'listItem', 'blockquote', 'blockCard', 'embedCard']);

/**
 * How deep adfText follows `content`. Real documents nest a few levels (lists
 * in lists in a table cell); a provider's answer nested deeper is hostile or
 * broken, and following it would overflow the stack.
 */
export const MAX_ADF_DEPTH = 100;
/** Stands in for content nested deeper than MAX_ADF_DEPTH, so the cut is visible. */
export const TOO_DEEP = '[content nested too deep, left out]';

/** The text of an ADF document (or a v2 plain string); inline nodes that stand for text keep it. */
export function adfText(node: unknown): string {
  const out: string[] = [];
  walk(node, 0, out);
  return out.join('');
}

/** Appends one node's text to `out` (one array for the whole document: no string copied once per level). */
function walk(node: unknown, depth: number, out: string[]): void {
  if (typeof node === 'string') {
    out.push(node);
    return;
  }
  const o = obj(node);
  const a = obj(o.attrs);
  switch (o.type) {
    case 'text':
      out.push(str(o.text));
      return;
    case 'hardBreak':
      out.push('\n');
      return;
    case 'mention':
      out.push(str(a.text) || (str(a.id) !== '' ? `@${str(a.id)}` : ''));
      return;
    case 'emoji':
      out.push(str(a.text) || str(a.shortName));
      return;
    case 'inlineCard':
    case 'blockCard':
    case 'embedCard':
      out.push(`${str(a.url) || str(obj(a.data).url)}${o.type === 'inlineCard' ? '' : '\n'}`);
      return;
    case 'date':
      out.push(day(a.timestamp));
      return;
    case 'status':
      out.push(str(a.text));
      return;
    default: {
      const children = nodes(o.content);
      if (children.length > 0 && depth >= MAX_ADF_DEPTH) out.push(TOO_DEEP);
      else for (const child of children) walk(child, depth + 1, out);
      if (BLOCKS.has(str(o.type))) out.push('\n');
    }
  }
}
