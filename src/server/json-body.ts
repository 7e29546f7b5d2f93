/**
 * Turns a request body into one JSON-RPC message, or a verdict saying why not.
 * Pure; the HTTP status and JSON-RPC code are chosen here so every listener
 * answers alike. And the admin routes' JSON bodies, checked against a schema.
 */
import type { z } from 'zod';
import { formatZodIssues } from '../config/zod-issues.js';
import { GatehouseError } from '../errors.js';


/** Deeper than any tool argument needs; far below what would exhaust a stack in the recursive walks that follow (schema check, redaction, serialization). */
export const MAX_JSON_DEPTH = 100;

export type BodyVerdict = { ok: true; body: unknown } | { ok: false; status: 400; code: number; message: string };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Nesting depth of JSON text, counted without parsing (so without recursion); stops counting past `limit`. */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

export function parseJsonRpcBody(bytes: Uint8Array): BodyVerdict {
  let text: string;
  try {
    // RFC 8259 §8.1: JSON exchanged between systems MUST be UTF-8. Replacing bad bytes with U+FFFD would
    // decide and forward something other than what was sent.
    text = utf8.decode(bytes);
  } catch {
    return { ok: false, status: 400, code: -32700, message: 'Parse error: the request body is not valid UTF-8' };
  }
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
    return { ok: false, status: 400, code: -32600, message: `Invalid Request: JSON nested deeper than ${MAX_JSON_DEPTH} levels` };
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { ok: false, status: 400, code: -32700, message: 'Parse error: Invalid JSON' };
  }
  // MCP 2025-06-18 removed JSON-RPC batching; 2025-11-25 (what this gateway speaks) has none. One message per POST.
  if (Array.isArray(body)) {
    return { ok: false, status: 400, code: -32600, message: 'Invalid Request: JSON-RPC batches are not supported (removed in MCP 2025-06-18); send one message per request' };
  }
  return { ok: true, body };
}

/**
 * An admin route's JSON body, checked against `schema`: a USAGE error when it
 * is not JSON, or when it does not fit (saying why, or `invalid` when given).
 */
export async function adminBody<S extends z.ZodType>(req: { json(): Promise<unknown> }, schema: S, invalid?: string): Promise<z.output<S>> {
  let raw: unknown;
  try {
    raw = await req.json();
  } catch {
    throw new GatehouseError('USAGE', 'request body is not valid JSON');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new GatehouseError('USAGE', invalid ?? `invalid body: ${formatZodIssues(parsed.error.issues)}`);
  return parsed.data;
}
