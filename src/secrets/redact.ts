import { secretForms } from './forms.js';

export const redactedMark = (name: string): string => `[REDACTED:${name}]`;

/** Old values stay redacted after a rotation (an upstream may still echo one); this many per secret. */
const VALUES_PER_SECRET = 16;
/** Deeper than this, a value is replaced whole rather than walked (results come from JSON, so this is never reached in practice). */
const MAX_DEPTH = 256;

/**
 * Knows every secret value the gateway has read and replaces each of its
 * forms (see `secretForms`) by `[REDACTED:NAME]` in strings, however deep in
 * a result, error, notification, audit record or log line.
 *
 * Matching is one combined regular expression of the literal forms, longest
 * first, so one pass over a string finds every form of every secret.
 */
export class Redactor {
  private readonly values = new Map<string, string[]>();
  private formOwner = new Map<string, string>();
  private matcher: RegExp | undefined;
  private shortest = Infinity;

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
    return this.formOwner.size;
  }

  private rebuild(): void {
    const owner = new Map<string, string>();
    for (const [name, values] of this.values) {
      for (const v of values) for (const f of secretForms(v)) if (!owner.has(f)) owner.set(f, name);
    }
    this.formOwner = owner;
    if (owner.size === 0) {
      this.matcher = undefined;
      this.shortest = Infinity;
      return;
    }
    const forms = [...owner.keys()].sort((a, b) => b.length - a.length);
    this.shortest = forms[forms.length - 1]?.length ?? Infinity;
    this.matcher = new RegExp(forms.map(escapeRegExp).join('|'), 'g');
  }

  /** Replaces every known secret form in `text`. */
  redactText(text: string): string {
    const m = this.matcher;
    if (m === undefined || text.length < this.shortest) return text;
    return text.replace(m, (f) => redactedMark(this.formOwner.get(f) ?? 'secret'));
  }

  /**
   * Redacts every string (and object key) inside `value`, without mutating
   * it: arrays and plain objects are copied only where something changed.
   */
  redact<T>(value: T): T {
    if (this.matcher === undefined) return value;
    return this.walk(value, 0) as T;
  }

  private walk(v: unknown, depth: number): unknown {
    if (typeof v === 'string') return this.redactText(v);
    if (v === null || typeof v !== 'object') return v;
    if (depth > MAX_DEPTH) return '[REDACTED:too-deep]';
    if (Array.isArray(v)) {
      let out: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        const r = this.walk(v[i], depth + 1);
        if (r !== v[i]) (out ??= v.slice())[i] = r;
      }
      return out ?? v;
    }
    if (v instanceof Error) {
      const message = this.redactText(v.message);
      return message === v.message ? v : Object.assign(new Error(message), { name: v.name });
    }
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) return v;
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const rk = this.redactText(k);
      const rx = this.walk(x, depth + 1);
      if (rk !== k || rx !== x) changed = true;
      out[rk] = rx;
    }
    return changed ? out : v;
  }
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
