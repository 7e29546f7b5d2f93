import { MIN_SECRET_LENGTH, RECOMMENDED_SECRET_LENGTH } from './safety.js';

/**
 * The ways a secret value can show up in text that an upstream sends back:
 * as is, JSON-escaped (also with `\/`, and escaped twice for JSON inside a
 * JSON string), URL-encoded (RFC 3986 and form encoding, upper and lower
 * case hex), hex, and base64/base64url at each of the three byte alignments
 * it can have inside a longer base64 text ("Basic " + base64("user:" + token)
 * puts the token at an arbitrary offset), base32 likewise at each of its five
 * alignments, the value reversed, and hex with the separators people and
 * tools put between bytes (`de:ad:be:ef`, `de ad`, `\xde\xad`, `0xde, 0xad`,
 * `%de%ad`; see `separatedHex`). The redactor finds every form in any letter
 * case.
 *
 * Values shorter than RECOMMENDED_SECRET_LENGTH get only their literal and
 * JSON forms: an encoded fragment of a 5-byte value is 4-6 characters, short
 * enough to hit unrelated base64 or hex in a result. Values shorter than
 * MIN_SECRET_LENGTH get none, and the resolver refuses to send them.
 */
export function secretForms(value: string): string[] {
  if (value.length < MIN_SECRET_LENGTH) return [];
  const forms = new Set<string>([value]);
  const json = JSON.stringify(value).slice(1, -1);
  for (const j of [json, json.replaceAll('/', '\\/'), asciiJson(json)]) {
    forms.add(j);
    // JSON text inside a JSON string (a tool that returns JSON as text, or a log line quoting it).
    forms.add(JSON.stringify(j).slice(1, -1));
  }
  if (value.length >= RECOMMENDED_SECRET_LENGTH) {
    const uri = encodeURIComponent(value);
    forms.add(uri);
    forms.add(lowerPercent(uri));
    const form = new URLSearchParams([['', value]]).toString().slice(1);
    forms.add(form);
    forms.add(lowerPercent(form));
    forms.add(encodeURI(value));
    const bytes = Buffer.from(value, 'utf8');
    const hex = bytes.toString('hex');
    forms.add(hex);
    for (const f of separatedHex(hex)) forms.add(f);
    for (const b64 of base64Fragments(bytes)) {
      forms.add(b64);
      forms.add(b64.replaceAll('+', '-').replaceAll('/', '_'));
    }
    for (const b32 of base32Fragments(bytes)) forms.add(b32);
    forms.add([...value].reverse().join(''));
  }
  // JSON encoders that escape '/' (PHP's json_encode, some Java ones) write "\/" in every form.
  for (const f of [...forms]) if (f.includes('/')) forms.add(f.replaceAll('/', '\\/'));
  return [...forms].filter((f) => f.length >= MIN_SECRET_LENGTH);
}

/**
 * The base64 characters that depend on the value's bytes only, for the value
 * starting at byte offset 0, 1 and 2 of a 3-byte group; plus the complete
 * padded encoding of the value alone.
 */
export function base64Fragments(bytes: Buffer): string[] {
  const out = [bytes.toString('base64')];
  const n = bytes.length;
  for (let k = 0; k < 3; k++) {
    const enc = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64');
    const first = Math.ceil((8 * k) / 6);
    const end = Math.floor((8 * (k + n)) / 6);
    if (end > first) out.push(enc.slice(first, end));
  }
  return out;
}

function lowerPercent(s: string): string {
  return s.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
}

/** JSON text with every non-ASCII character as a \uXXXX escape (what many JSON encoders emit). */
function asciiJson(json: string): string {
  return json.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Between bytes: the separators of hex dumps, fingerprints, MAC-style and list notations (a JSON-escaped newline too). */
const HEX_SEPARATORS = [':', ' ', '-', '.', ',', ', ', '_', '|', '/', '\t', '\n', '\r\n', '\\n'];
/** Before each byte: C and shell escapes (also JSON-escaped), 0x lists, percent-encoding of every byte. */
const HEX_PREFIXES: [prefix: string, separators: string[]][] = [
  ['\\x', ['']],
  ['\\\\x', ['']],
  ['0x', ['', ' ', ',', ', ']],
  ['%', ['']],
];

/**
 * The value's hex with a separator between its bytes, or a prefix before each.
 * (A pattern allowing any separator between any two bytes found these too, but
 * with many secrets it scanned 20-40 times slower than the literal forms.)
 */
export function separatedHex(hex: string): string[] {
  const bytes = hex.match(/../g) ?? [];
  const out = HEX_SEPARATORS.map((sep) => bytes.join(sep));
  for (const [prefix, seps] of HEX_PREFIXES) for (const sep of seps) out.push(bytes.map((b) => prefix + b).join(sep));
  return out;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 (section 6; base32hex, section 7, with its alphabet), padded. */
export function base32(bytes: Uint8Array, alphabet = BASE32): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(acc << (5 - bits)) & 31];
  return out + '='.repeat((8 - (out.length % 8)) % 8);
}

/**
 * Like base64Fragments, for base32: the characters that depend on the value's
 * bytes only, at each of the five byte offsets in a 5-byte group (offset 0 is
 * the value's own encoding but its last, partial character).
 */
export function base32Fragments(bytes: Buffer, alphabet = BASE32): string[] {
  const out: string[] = [];
  const n = bytes.length;
  for (let k = 0; k < 5; k++) {
    const enc = base32(Buffer.concat([Buffer.alloc(k), bytes]), alphabet);
    const first = Math.ceil((8 * k) / 5);
    const end = Math.floor((8 * (k + n)) / 5);
    if (end > first) out.push(enc.slice(first, end));
  }
  return out;
}
