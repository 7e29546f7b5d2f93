/**
 * Finds a secret in text, in any form, independently of src/secrets/forms.ts:
 * the literal (also after removing JSON escapes, in any letter case, and
 * reversed), URL-encoded, hex (also split by separators), and any 12-character
 * run of its base64/base64url encoding at any byte alignment, or of its base32
 * or base32hex encoding at any alignment in any case.
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
  const folded = text.toLowerCase();
  if (!found.includes('plain') && folded.includes(value.toLowerCase())) found.push('re-cased');
  if (folded.includes([...value].reverse().join('').toLowerCase())) found.push('reversed');
  // Hex split by separators (de:ad, de ad, \\xde\\xad, 0xde, 0xad): only the digits count.
  if (!found.includes('hex') && !found.includes('HEX') && folded.replaceAll('0x', '').replace(/[^0-9a-f]/g, '').includes(literal.hex ?? '')) found.push('separated-hex');
  for (const [alphabet, letters] of [['base32', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'], ['base32hex', '0123456789ABCDEFGHIJKLMNOPQRSTUV']] as const) {
    const hit = [0, 1, 2, 3, 4].find((k) => {
      const bits = [...Buffer.concat([Buffer.alloc(k), bytes])].map((b) => b.toString(2).padStart(8, '0')).join('');
      let enc = '';
      // Only the characters made of the value's bits alone.
      for (let i = Math.ceil((8 * k) / 5) * 5; i + 5 <= bits.length; i += 5) enc += letters[parseInt(bits.slice(i, i + 5), 2)];
      for (let i = 0; i + 12 <= enc.length; i++) if (folded.includes(enc.slice(i, i + 12).toLowerCase())) return true;
      return false;
    });
    if (hit !== undefined) found.push(`${alphabet}@${hit}`);
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
