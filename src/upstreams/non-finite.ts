/**
 * JSON has no Infinity or NaN, but JSON.parse reads a number too big for a
 * double (`1e400`) as ±Infinity, which JSON.stringify then writes as `null`:
 * an upstream's `1e400` would reach the agent, and the audit, as `null`.
 * A result holding one is refused instead.
 */

/** Whether `value` holds a number that is not finite. Iterative: a result may be nested deeper than the stack. */
export function hasNonFinite(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return true;
    } else if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
    } else if (v !== null && typeof v === 'object') {
      for (const k in v) stack.push((v as Record<string, unknown>)[k]);
    }
  }
  return false;
}

/** The path of the first number in `value` that is not finite (`result.structuredContent.v`), or undefined; for the message, so only once one is known to be there. */
export function nonFinitePath(value: unknown, root = 'result'): string | undefined {
  if (!hasNonFinite(value)) return undefined;
  const stack: Array<[unknown, string]> = [[value, root]];
  while (stack.length > 0) {
    const [v, path] = stack.pop() as [unknown, string];
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return path.length > 200 ? `${path.slice(0, 200)}…` : path;
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], path.length > 200 ? path : `${path}[${i}]`]);
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, x] = entries[i] as [string, unknown];
        stack.push([x, path.length > 200 ? path : `${path}.${k.length > 40 ? `${k.slice(0, 40)}…` : k}`]);
      }
    }
  }
  return undefined;
}
