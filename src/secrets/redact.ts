import { FormIndex, LONG } from './form-index.js';
import { secretForms } from './forms.js';

export const redactedMark = (name: string): string => `[REDACTED:${name}]`;

/** Old values stay redacted after a rotation (an upstream may still echo one); this many per secret. */
const VALUES_PER_SECRET = 16;
/** Deeper than this, a value is replaced whole rather than walked (results come from JSON, so this is never reached in practice). */
const MAX_DEPTH = 256;

interface Span {
  start: number;
  end: number;
  name: string;
}

interface Matchers {
  /** Forms of at least LONG characters. */
  long: FormIndex | undefined;
  /** The few shorter ones (literal and JSON forms of short values). */
  short: RegExp | undefined;
}

/**
 * Knows every secret value the gateway has read and replaces each of its
 * forms (see `secretForms`) by `[REDACTED:NAME]` in strings, however deep in
 * a result, error, notification, audit record or log line.
 *
 * Every form is found in any letter case, in one pass over a string that does
 * not slow down with the number of forms (see `FormIndex`), linear in the
 * text. Adjacent text items of one array (a result's `content`) are searched
 * as one text, so a value split across them is caught.
 *
 * This is defence in depth, not a guarantee: an upstream that holds a secret
 * can always encode it some other way. Confinement of the upstream is what
 * keeps a secret it does not need away from it.
 */
export class Redactor {
  private readonly values = new Map<string, string[]>();
  private formCountValue = 0;
  /** Lower-cased short form → secret name. */
  private owner = new Map<string, string>();
  private matchers: Matchers | undefined;
  private shortest = Infinity;
  private longestForm = 0;

  /** Remembers a value read for secret `name`; idempotent. */
  learn(name: string, value: string): void {
    const known = this.values.get(name) ?? [];
    if (known.includes(value)) return;
    known.push(value);
    if (known.length > VALUES_PER_SECRET) known.shift();
    this.values.set(name, known);
    this.rebuild();
  }

  /** Number of distinct literal forms being looked for (for tests and metrics). */
  get formCount(): number {
    return this.formCountValue;
  }

  private rebuild(): void {
    const long: { form: string; name: string }[] = [];
    const owner = new Map<string, string>();
    const short: string[] = [];
    const seen = new Set<string>();
    for (const [name, values] of this.values) {
      for (const v of values) {
        for (const f of secretForms(v)) {
          const key = f.toLowerCase();
          if (seen.has(key)) continue;
          seen.add(key);
          if (f.length >= LONG) long.push({ form: f, name });
          else {
            short.push(key);
            owner.set(key, name);
          }
        }
      }
    }
    this.owner = owner;
    this.formCountValue = seen.size;
    this.shortest = Math.min(LONG, ...short.map((f) => f.length));
    this.longestForm = Math.max(0, ...[...seen].map((f) => f.length));
    if (seen.size === 0) {
      this.matchers = undefined;
      return;
    }
    const longestFirst = (a: string, b: string) => b.length - a.length;
    this.matchers = {
      long: long.length === 0 ? undefined : new FormIndex(long),
      short: short.length === 0 ? undefined : new RegExp(short.sort(longestFirst).map(escapeRegExp).join('|'), 'gi'),
    };
  }

  /** Length of the longest form looked for (a stream cut must keep this much minus one together). */
  get longest(): number {
    return this.longestForm;
  }

  /** Replaces every known secret form in `text`. */
  redactText(text: string): string {
    const spans = this.spansOf(text);
    return spans.length === 0 ? text : applySpans(text, spans);
  }

  /** Where secret forms are in `text`: sorted, not overlapping. */
  private spansOf(text: string): Span[] {
    const m = this.matchers;
    if (m === undefined || text.length < this.shortest) return [];
    const found: Span[] = [];
    m.long?.find(text, found);
    if (m.short !== undefined) {
      m.short.lastIndex = 0;
      for (let x = m.short.exec(text); x !== null; x = m.short.exec(text)) {
        found.push({ start: x.index, end: x.index + x[0].length, name: this.owner.get(x[0].toLowerCase()) ?? 'secret' });
      }
    }
    return mergeSpans(found);
  }

  /**
   * Redacts every string (and object key) inside `value`, without mutating
   * it: arrays and plain objects are copied only where something changed.
   */
  redact<T>(value: T): T {
    if (this.matchers === undefined) return value;
    return this.walk(value, 0) as T;
  }

  private walk(v: unknown, depth: number): unknown {
    if (typeof v === 'string') return this.redactText(v);
    if (v === null || typeof v !== 'object') return v;
    if (depth > MAX_DEPTH) return '[REDACTED:too-deep]';
    if (Array.isArray(v)) {
      const joined = this.acrossItems(v);
      let out: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        const text = joined?.get(i);
        const item: unknown = v[i];
        const r = text === undefined ? this.walk(item, depth + 1) : typeof item === 'string' ? text : this.walkObject(item as object, depth, text);
        if (r !== v[i]) (out ??= v.slice())[i] = r;
      }
      return out ?? v;
    }
    if (v instanceof Error) {
      const message = this.redactText(v.message);
      return message === v.message ? v : Object.assign(new Error(message), { name: v.name });
    }
    return isPlain(v) ? this.walkObject(v, depth) : v;
  }

  /** A plain object's keys and values redacted; with `text`, its `text` (already redacted) replaced by it. */
  private walkObject(v: object, depth: number, text?: string): unknown {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const rk = this.redactText(k);
      const rx = text !== undefined && k === 'text' ? text : this.walk(x, depth + 1);
      if (rk !== k || rx !== x) changed = true;
      out[rk] = rx;
    }
    return changed ? out : v;
  }

  /**
   * Runs of adjacent text items (strings, or plain objects with a string
   * `text`, as in a result's `content`) are searched as one text, so a value
   * split across items is found; each item loses its piece. Returns every such
   * item's redacted text by index (undefined: no run of two or more).
   */
  private acrossItems(items: readonly unknown[]): Map<number, string> | undefined {
    let result: Map<number, string> | undefined;
    let i = 0;
    while (i < items.length) {
      let j = i;
      const texts: string[] = [];
      for (let t = textOf(items[j]); t !== undefined && j < items.length; t = textOf(items[++j])) texts.push(t);
      if (texts.length > 1) {
        const spans = this.spansOf(texts.join(''));
        let from = 0;
        for (const [k, t] of texts.entries()) {
          const local = spans
            .filter((s) => s.start < from + t.length && s.end > from)
            .map((s) => ({ start: Math.max(s.start, from) - from, end: Math.min(s.end, from + t.length) - from, name: s.name }));
          (result ??= new Map()).set(i + k, local.length === 0 ? t : applySpans(t, local));
          from += t.length;
        }
      }
      i = Math.max(j, i + 1);
    }
    return result;
  }
}

function isPlain(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** The string an array item contributes to a run of adjacent text items, if it is one. */
function textOf(item: unknown): string | undefined {
  if (typeof item === 'string') return item;
  if (item !== null && typeof item === 'object' && !Array.isArray(item) && isPlain(item)) {
    const t = (item as { text?: unknown }).text;
    if (typeof t === 'string') return t;
  }
  return undefined;
}

/** Sorts spans and merges overlapping ones (the first one's name wins). */
function mergeSpans(spans: Span[]): Span[] {
  if (spans.length < 2) return spans;
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Span[] = [];
  for (const s of spans) {
    const last = out.at(-1);
    if (last !== undefined && s.start < last.end) last.end = Math.max(last.end, s.end);
    else out.push({ ...s });
  }
  return out;
}

function applySpans(text: string, spans: readonly Span[]): string {
  let out = '';
  let at = 0;
  for (const s of spans) {
    out += text.slice(at, s.start) + redactedMark(s.name);
    at = s.end;
  }
  return out + text.slice(at);
}

function escapeRegExp(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

/** Every running gateway's redactor; log lines pass through all of them (one process may run several gateways, e.g. in tests). */
const logRedactors = new Set<Redactor>();

/** Registers `r` for `redactLogLine`; returns the function that unregisters it. */
export function addLogRedactor(r: Redactor): () => void {
  logRedactors.add(r);
  return () => void logRedactors.delete(r);
}

/** The log line filter (see `setLogLineFilter` in src/log.ts). */
export function redactLogLine(line: string): string {
  let out = line;
  for (const r of logRedactors) out = r.redactText(out);
  return out;
}
