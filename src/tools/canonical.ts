/**
 * What of a tool is pinned, and its hash (issue #16): the fields the model is
 * told — name, title, description, inputSchema, outputSchema, annotations.
 * `_meta`, `icons` and anything else are left out: they do not reach the
 * model's instructions, and a server may change them freely.
 *
 * Serialization is RFC 8785 (audit/canonical.ts `canonicalize`), applied to a
 * strict JSON copy made here: unlike `toJsonValue` (built for log records)
 * nothing is truncated at depth or rewritten (lone surrogates stay as they
 * are), so two tools that differ anywhere never hash alike.
 */
import { createHash } from 'node:crypto';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { canonicalize, type JsonValue } from '../audit/canonical.js';
import { GatehouseError } from '../errors.js';

/** The pinned fields of a tool, absent ones left out. */
export interface Snapshot {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: JsonValue;
  outputSchema?: JsonValue;
  annotations?: JsonValue;
}

/** Far beyond any real schema (broker/schema-limits.ts refuses deeper than 64); bounds the recursion. */
const MAX_DEPTH = 512;

/**
 * A plain JSON copy with JSON.stringify's semantics (toJSON applied; undefined,
 * functions and symbols dropped from objects, null in arrays; non-finite
 * numbers null). Objects have no prototype, so a `__proto__` key stays a key.
 * Throws GatehouseError UPSTREAM_PROTOCOL past MAX_DEPTH or on a bigint.
 */
function plainJson(value: unknown, depth: number): JsonValue | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'bigint':
      throw new GatehouseError('UPSTREAM_PROTOCOL', 'a tool definition holds a bigint, which JSON cannot');
  }
  if (value === null) return null;
  if (depth >= MAX_DEPTH) throw new GatehouseError('UPSTREAM_PROTOCOL', `a tool definition nests deeper than ${MAX_DEPTH} levels`);
  const withJson = value as { toJSON?: () => unknown };
  if (typeof withJson.toJSON === 'function') return plainJson(withJson.toJSON(), depth + 1);
  if (Array.isArray(value)) return value.map((v) => plainJson(v, depth + 1) ?? null);
  const out = Object.create(null) as { [k: string]: JsonValue };
  for (const k of Object.keys(value as object)) {
    const v = plainJson((value as Record<string, unknown>)[k], depth + 1);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** Keys sorted recursively (RFC 8785 order), no whitespace, arrays in order. */
export function canonicalJson(value: unknown): string {
  return canonicalize(plainJson(value, 0) ?? null);
}

const PINNED = ['title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const;

/** The pinned fields of `tool` as plain JSON; a field that is absent (or undefined) is left out. */
export function toolSnapshot(tool: Tool): Snapshot {
  const snap: Snapshot = { name: tool.name };
  const source = tool as Record<string, unknown>;
  for (const key of PINNED) {
    const v = plainJson(source[key], 0);
    if (v !== undefined) (snap as unknown as Record<string, JsonValue>)[key] = v;
  }
  return snap;
}

/** sha256 hex of a snapshot's canonical JSON. */
export function snapshotHash(snapshot: Snapshot): string {
  return createHash('sha256').update(canonicalJson(snapshot), 'utf8').digest('hex');
}

/** sha256 hex of canonicalJson(toolSnapshot(tool)). */
export function toolHash(tool: Tool): string {
  return snapshotHash(toolSnapshot(tool));
}
