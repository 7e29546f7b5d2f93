/**
 * Bounds on an upstream's `inputSchema`, checked before it is compiled: ajv's
 * compile time and memory grow with the schema (a 1 MB nested `anyOf` froze
 * the event loop 27 s and took 1.4 GB), and the schema comes from the upstream.
 */
export interface SchemaLimits {
  /** Serialized size, in UTF-8 bytes. */
  maxBytes: number;
  /** Nesting of objects and arrays (the root schema is depth 1). */
  maxDepth: number;
  /** Objects and arrays in the schema: an upper bound on its subschemas. */
  maxNodes: number;
}

/** Far above what real tools declare (GitHub's largest is ~10 KiB, under 20 deep). Constants for now. */
export const SCHEMA_LIMITS: Readonly<SchemaLimits> = { maxBytes: 256 * 1024, maxDepth: 64, maxNodes: 1_000 };

/**
 * Why the schema is over a limit, or undefined when it is within all of them.
 * Pure; iterative, and stops at the first limit passed, so a hostile schema
 * costs at most `maxNodes` steps before its size is measured.
 */
export function schemaOverLimit(schema: unknown, limits: SchemaLimits = SCHEMA_LIMITS): string | undefined {
  if (schema === null || typeof schema !== 'object') return undefined;
  // Counted when pushed, so even one object with a million members is refused after maxNodes of them.
  let nodes = 1;
  const stack: Array<[object, number]> = [[schema, 1]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [v, depth] = item;
    if (depth > limits.maxDepth) return `the schema nests deeper than ${limits.maxDepth} levels`;
    for (const x of Array.isArray(v) ? (v as unknown[]) : Object.values(v)) {
      if (x === null || typeof x !== 'object') continue;
      if (++nodes > limits.maxNodes) return `the schema has more than ${limits.maxNodes.toLocaleString('en-US')} subschemas`;
      stack.push([x, depth + 1]);
    }
  }
  // Within the depth limit, JSON.stringify cannot exhaust the stack.
  const bytes = Buffer.byteLength(JSON.stringify(schema) ?? '', 'utf8');
  if (bytes > limits.maxBytes) return `the schema is ${bytes.toLocaleString('en-US')} bytes, over the ${limits.maxBytes.toLocaleString('en-US')}-byte limit`;
  return undefined;
}
