/**
 * Bounded label values. A Prometheus series exists per distinct label set,
 * so any value an agent can choose (a tool name, a model name) must not
 * become a label as is: it would let a hostile agent create series without
 * end and exhaust the gateway's memory and the scraper's.
 */

/** The label value every name past a label's cap, or outside what is known, shares. */
export const OTHER = '_other';
/** A tool name the catalog does not expose (unknown, hidden, or a connector not ready). */
export const UNKNOWN = '_unknown';
/** No value: a record without the field (a call refused before it had a connector). */
export const NONE = 'none';

/**
 * The first `cap` distinct values get their own label value; every later
 * one shares OTHER. Values are admitted only when `known` says so (a name
 * that is not in the catalog shares `unknown`). Never forgets: a value once
 * admitted stays (series would otherwise flap between two labels).
 */
export class BoundedLabel {
  readonly #seen = new Set<string>();
  constructor(
    readonly cap: number,
    private readonly fallback: string = OTHER,
  ) {}

  value(v: unknown, known?: (v: string) => boolean): string {
    if (typeof v !== 'string' || v === '') return NONE;
    if (this.#seen.has(v)) return v;
    if (known !== undefined && !known(v)) return this.fallback;
    if (this.#seen.size >= this.cap) return OTHER;
    this.#seen.add(v);
    return v;
  }

  get size(): number {
    return this.#seen.size;
  }
}

/** A label from a fixed set of values; anything else is OTHER. */
export function oneOf<T extends string>(v: unknown, allowed: ReadonlySet<T>): T | typeof OTHER | typeof NONE {
  if (v === undefined || v === null) return NONE;
  return typeof v === 'string' && allowed.has(v as T) ? (v as T) : OTHER;
}

/**
 * A metric's children (one per label set) kept in nested maps keyed by the
 * label values themselves: the per-call cost is a few map lookups, with no
 * key string built (prom-client's `labels()` sorts and joins the labels on
 * every call).
 */
export class Children<C> {
  readonly #root = new Map<string, unknown>();
  constructor(private readonly make: (values: readonly string[]) => C) {}

  get(...values: string[]): C {
    let level = this.#root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      const k = values[i] as string;
      let next = level.get(k) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(k, next);
      }
      level = next;
    }
    const k = last < 0 ? '' : (values[last] as string);
    let child = level.get(k) as C | undefined;
    if (child === undefined) {
      child = this.make(values);
      level.set(k, child);
    }
    return child;
  }
}
