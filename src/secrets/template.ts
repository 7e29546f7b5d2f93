/**
 * `${secret:NAME}` references in registry values. Parsing is pure; resolving
 * a reference to a value happens at the last moment, in the gateway only.
 */
export const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const REF = /\$\{secret:([^}]*)\}/g;

export type TemplatePart = { text: string } | { secret: string };

export function parseTemplate(value: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let last = 0;
  for (const m of value.matchAll(REF)) {
    const at = m.index;
    if (at > last) parts.push({ text: value.slice(last, at) });
    parts.push({ secret: m[1] ?? '' });
    last = at + m[0].length;
  }
  if (last < value.length) parts.push({ text: value.slice(last) });
  return parts;
}

/** Names referenced by a value; an invalid name is returned as-is for the schema to reject. */
export function secretRefs(value: string): string[] {
  return parseTemplate(value).flatMap((p) => ('secret' in p ? [p.secret] : []));
}
