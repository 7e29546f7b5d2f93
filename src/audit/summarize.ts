/** Largest string kept whole in an audit record; longer ones are cut and their size noted. */
export const MAX_AUDIT_STRING = 1024;
const MAX_DEPTH = 8;
const MAX_KEYS = 100;

/** `text` itself, or its first MAX_AUDIT_STRING characters and its full size in bytes. */
export function cutString(text: string): string {
  if (text.length <= MAX_AUDIT_STRING) return text;
  return `${text.slice(0, MAX_AUDIT_STRING)}…[truncated, ${Buffer.byteLength(text)} bytes]`;
}

/** JSON size of a value too deep to copy; none when it can't be serialized (deeper than JSON.stringify's stack, or cyclic). */
function deepNote(value: unknown): string {
  try {
    return `[nested too deep, ${Buffer.byteLength(JSON.stringify(value) ?? '')} bytes]`;
  } catch {
    return '[nested too deep]';
  }
}

/** A bounded copy of tool arguments for the audit log: long strings cut, deep or wide values summarized. */
export function summarizeArgs(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return cutString(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return deepNote(value);
  if (Array.isArray(value)) {
    const head = value.slice(0, MAX_KEYS).map((v) => summarizeArgs(v, depth + 1));
    return value.length > MAX_KEYS ? [...head, `…[${value.length - MAX_KEYS} more items]`] : head;
  }
  const out: Record<string, unknown> = {};
  const entries = Object.entries(value);
  for (const [k, v] of entries.slice(0, MAX_KEYS)) out[cutString(k)] = summarizeArgs(v, depth + 1);
  if (entries.length > MAX_KEYS) out['…'] = `[${entries.length - MAX_KEYS} more keys]`;
  return out;
}
