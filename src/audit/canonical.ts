/**
 * Canonical JSON for hashing: RFC 8785 (JSON Canonicalization Scheme).
 * Keys are sorted by UTF-16 code units (RFC 8785 §3.2.3), numbers use the
 * ECMAScript Number-to-String form (§3.2.2.3, what JSON.stringify does) and
 * strings use JSON.stringify's escaping (§3.2.2.2).
 *
 * Records are first reduced to plain JSON values by `toJsonValue`, so the
 * bytes pino writes and the bytes hashed agree on every value.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

const MAX_DEPTH = 32;
const ANY_SURROGATE = /[\ud800-\udfff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Replaces lone UTF-16 surrogates by U+FFFD: they cannot round-trip through UTF-8. */
export function wellFormed(s: string): string {
  return ANY_SURROGATE.test(s) ? s.replace(LONE_SURROGATE, '\ufffd') : s;
}

/**
 * A plain JSON copy: `toJSON` applied (Dates become strings), undefined,
 * functions and symbols dropped from objects (null in arrays, as JSON does),
 * non-finite numbers null, bigints strings, strings well-formed, object keys
 * inserted in canonical order.
 */
export function toJsonValue(value: unknown, depth = 0): JsonValue | undefined {
  switch (typeof value) {
    case 'string':
      return wellFormed(value);
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return null;
  const withJson = value as { toJSON?: () => unknown };
  if (typeof withJson.toJSON === 'function') return toJsonValue(withJson.toJSON(), depth);
  if (depth >= MAX_DEPTH) return '[nested too deep]';
  if (Array.isArray(value)) return value.map((v) => toJsonValue(v, depth + 1) ?? null);
  const out: { [k: string]: JsonValue } = {};
  for (const k of Object.keys(value as object).sort()) {
    const v = toJsonValue((value as Record<string, unknown>)[k], depth + 1);
    if (v !== undefined) out[wellFormed(k)] = v;
  }
  return out;
}

function compareKeys(a: string, b: string): number {
  // Stryker disable next-line all: an object's keys are unique and V8's sort asks only "is a less than b" (equivalent.md)
  return a < b ? -1 : a > b ? 1 : 0;
}

/** RFC 8785 serialization of a plain JSON value (as returned by `toJsonValue`). */
export function canonicalize(value: JsonValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) {
    let s = '[';
    for (let i = 0; i < value.length; i++) s += (i === 0 ? '' : ',') + canonicalize(value[i] ?? null);
    return s + ']';
  }
  // Object.keys puts integer-like keys first in numeric order; RFC 8785 wants code-unit order.
  const keys = Object.keys(value).sort(compareKeys);
  let s = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    s += (i === 0 ? '' : ',') + JSON.stringify(k) + ':' + canonicalize(value[k] as JsonValue);
  }
  return s + '}';
}
