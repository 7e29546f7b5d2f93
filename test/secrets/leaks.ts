/**
 * Finds a secret in text, in any form, independently of src/secrets/forms.ts:
 * the literal (also after removing JSON escapes), URL-encoded, hex, and any
 * 12-character run of its base64/base64url encoding at any byte alignment.
 */
export function findLeaks(text: string, value: string): string[] {
  const found: string[] = [];
  const unescaped = text.replaceAll('\\', '');
  const bytes = Buffer.from(value, 'utf8');
  const literal: Record<string, string> = {
    plain: value,
    urlencoded: encodeURIComponent(value),
    urlencodedLower: encodeURIComponent(value).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    hex: bytes.toString('hex'),
    HEX: bytes.toString('hex').toUpperCase(),
  };
  for (const [name, form] of Object.entries(literal)) {
    if (text.includes(form) || unescaped.includes(form)) found.push(name);
  }
  // The value's own backslashes vanish with the escapes: compare without them too.
  if (value.includes('\\') && unescaped.includes(value.replaceAll('\\', ''))) found.push('json-escaped');
  for (let k = 0; k < 3; k++) {
    const enc = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64');
    const inner = enc.slice(Math.ceil((8 * k) / 6), Math.floor((8 * (k + bytes.length)) / 6));
    for (const [alphabet, s] of [['base64', inner], ['base64url', inner.replaceAll('+', '-').replaceAll('/', '_')]] as const) {
      for (let i = 0; i + 12 <= s.length; i++) {
        const w = s.slice(i, i + 12);
        if (text.includes(w) || unescaped.includes(w)) {
          found.push(`${alphabet}@${k}`);
          break;
        }
      }
    }
  }
  return found;
}
