/**
 * Tool parameters mirrored into HTTP headers (MCP 2026-07-28,
 * transports/streamable-http §Custom Headers from Tool Parameters): a property
 * of a tool's inputSchema marked `x-mcp-header: "Region"` travels as
 * `Mcp-Param-Region` next to the body. Both sides of the gateway need it: a
 * 2026-07-28 agent's headers are checked against its body before the call is
 * decided (a server that processes the body MUST, §Server Behavior), and a
 * 2026-07-28 upstream gets the headers it declared (its own check would refuse
 * the call otherwise). Pure functions.
 */

/** One annotated property: where its value is in the arguments, and its header. */
export interface ParamDeclaration {
  path: readonly string[];
  /** The header name, lowercase (`mcp-param-region`). */
  header: string;
}

/** RFC 9110 §5.6.2 token characters: what the name part of a header may hold. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
/** How deep annotated properties are looked for (nested `properties` chains). */
const MAX_DEPTH = 8;
const cache = new WeakMap<object, readonly ParamDeclaration[]>();

/** The `x-mcp-header` declarations of an inputSchema (an invalid one is left out, never guessed at). */
export function paramDeclarations(schema: unknown): readonly ParamDeclaration[] {
  if (typeof schema !== 'object' || schema === null) return [];
  const hit = cache.get(schema);
  if (hit) return hit;
  const out: ParamDeclaration[] = [];
  const seen = new Set<string>();
  const walk = (node: unknown, path: string[]) => {
    if (path.length > MAX_DEPTH || typeof node !== 'object' || node === null) return;
    const props = (node as { properties?: unknown }).properties;
    if (typeof props !== 'object' || props === null) return;
    for (const [key, prop] of Object.entries(props as Record<string, unknown>)) {
      if (typeof prop !== 'object' || prop === null) continue;
      const name = (prop as Record<string, unknown>)['x-mcp-header'];
      if (typeof name === 'string' && TOKEN.test(name) && !seen.has(name.toLowerCase())) {
        seen.add(name.toLowerCase());
        out.push({ path: [...path, key], header: `mcp-param-${name.toLowerCase()}` });
      }
      walk(prop, [...path, key]);
    }
  };
  walk(schema, []);
  cache.set(schema, out);
  return out;
}

function valueAt(args: unknown, path: readonly string[]): unknown {
  let v = args;
  for (const k of path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

const PLAIN = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;
const SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;
const FIELD_VALUE = /^[\t\x20-\x7e]*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A header value as the client meant it: plain ASCII, or the `=?base64?…?=` sentinel decoded (§Value Encoding); undefined when malformed. */
export function decodeHeaderValue(raw: string): string | undefined {
  if (!FIELD_VALUE.test(raw)) return undefined;
  // Anything in the sentinel's shape is the sentinel (clients must encode a plain value that looks like one).
  if (!(raw.startsWith('=?base64?') && raw.endsWith('?=') && raw.length >= 11)) return raw;
  const b64 = SENTINEL.exec(raw)?.[1];
  if (b64 === undefined || b64.length % 4 !== 0) return undefined;
  try {
    return utf8.decode(Buffer.from(b64, 'base64'));
  } catch {
    return undefined;
  }
}

/** The header value of one argument (§Value Encoding), or undefined when it has none (absent, null, not a primitive). */
export function encodeParamValue(v: unknown): string | undefined {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' && Number.isFinite(v)) s = String(v);
  else if (typeof v === 'boolean') s = v ? 'true' : 'false';
  else return undefined;
  return PLAIN.test(s) && !s.startsWith('=?base64?') ? s : `=?base64?${Buffer.from(s, 'utf8').toString('base64')}?=`;
}

/** The `Mcp-Param-*` headers a call with `args` carries. */
export function paramHeaders(decls: readonly ParamDeclaration[], args: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of decls) {
    const v = encodeParamValue(valueAt(args, d.path));
    if (v !== undefined) out[d.header] = v;
  }
  return out;
}

/**
 * Why the request's `Mcp-Param-*` headers disagree with its arguments, if
 * they do (§Server Behavior for Custom Headers: a value in the body needs its
 * header; a header needs its value; numbers compare as numbers).
 */
export function paramHeaderProblem(decls: readonly ParamDeclaration[], args: unknown, header: (name: string) => string | null | undefined): string | undefined {
  for (const d of decls) {
    const name = `Mcp-Param-${d.header.slice('mcp-param-'.length)}`;
    const raw = header(d.header);
    const v = valueAt(args, d.path);
    const expected = encodeParamValue(v);
    if (raw === undefined || raw === null) {
      if (expected !== undefined) return `the ${name} header is required (the arguments set ${d.path.join('.')})`;
      continue;
    }
    const got = decodeHeaderValue(raw.trim());
    if (got === undefined) return `the ${name} header is malformed`;
    if (expected === undefined) return `the ${name} header names a value the arguments do not have`;
    const same = typeof v === 'number' ? got.trim() !== '' && Number(got) === v : got === (typeof v === 'boolean' ? String(v) : v);
    if (!same) return `the ${name} header does not match ${d.path.join('.')} in the arguments`;
  }
  return undefined;
}
