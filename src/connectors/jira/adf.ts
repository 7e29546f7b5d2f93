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

/** Plain text as an ADF document: a blank line separates paragraphs, a single newline is a `hardBreak`. */
export function adf(text: string): J {
  // Trailing newlines would end the last paragraph with empty breaks.
  const t = text.replace(/\r\n?/g, '\n').replace(/\n+$/, '');
  return { type: 'doc', version: 1, content: t.split(/\n{2,}/).map((para) => ({ type: 'paragraph', content: inline(para) })) };
}

/** YYYY-MM-DD of a `date` node's timestamp (milliseconds since the epoch, UTC). */
function day(ts: unknown): string {
  const n = typeof ts === 'number' ? ts : /^-?\d{1,16}$/.test(str(ts)) ? Number(ts) : NaN;
  return Number.isFinite(n) && Math.abs(n) < 8.64e15 ? new Date(n).toISOString().slice(0, 10) : '';
}

const BLOCKS = new Set(['paragraph', 'heading', 'codeBlock', 'listItem', 'blockquote', 'blockCard', 'embedCard']);

/** The text of an ADF document (or a v2 plain string); inline nodes that stand for text keep it. */
export function adfText(node: unknown): string {
  if (typeof node === 'string') return node;
  const o = obj(node);
  const a = obj(o.attrs);
  switch (o.type) {
    case 'text':
      return str(o.text);
    case 'hardBreak':
      return '\n';
    case 'mention':
      return str(a.text) || (str(a.id) !== '' ? `@${str(a.id)}` : '');
    case 'emoji':
      return str(a.text) || str(a.shortName);
    case 'inlineCard':
    case 'blockCard':
    case 'embedCard':
      return `${str(a.url) || str(obj(a.data).url)}${o.type === 'inlineCard' ? '' : '\n'}`;
    case 'date':
      return day(a.timestamp);
    case 'status':
      return str(a.text);
    default: {
      const inner = nodes(o.content).map(adfText).join('');
      return BLOCKS.has(str(o.type)) ? `${inner}\n` : inner;
    }
  }
}
