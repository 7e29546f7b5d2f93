/**
 * Pure checks on secret values. A verdict names the problem, never the value.
 */
export type ValueVerdict = { ok: true } | { ok: false; reason: string };

/** Where a rendered value goes. Headers are the strict case and the default. */
export type Sink = 'header' | 'env';

/**
 * Below this length a value cannot be redacted without mangling ordinary
 * output (every "abc" in a result would go), so it is never sent upstream.
 */
export const MIN_SECRET_LENGTH = 4;
/** Below this, only the value itself (not its encoded forms) is redacted; `secret set` asks for --allow-short. */
export const RECOMMENDED_SECRET_LENGTH = 8;
export const MAX_SECRET_LENGTH = 64 * 1024;

const OK: ValueVerdict = { ok: true };

function describe(code: number): string {
  if (code === 0x0d) return 'a carriage return (CR)';
  if (code === 0x0a) return 'a line feed (LF)';
  if (code === 0x00) return 'a NUL byte';
  if (code === 0x09) return 'a tab';
  if (code === 0x7f) return 'a DEL control character';
  if (code > 0xff) return 'a character outside Latin-1';
  return `a control character (0x${code.toString(16).padStart(2, '0')})`;
}

/**
 * A header field value (RFC 9110 §5.5): visible ASCII, space and obs-text
 * (0x80-0xFF). CR, LF and NUL could end the header line and start a new one
 * (request smuggling); other controls are refused too. Tab is legal in a
 * field value but never in a credential, so it is refused as well.
 */
export function checkHeaderValue(value: string): ValueVerdict {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c > 0xff) return { ok: false, reason: `contains ${describe(c)} at position ${i}, which is not allowed in an HTTP header` };
  }
  return OK;
}

/** An environment value: anything but NUL (it would end the C string; spawn refuses it). */
export function checkEnvValue(value: string): ValueVerdict {
  const at = value.indexOf('\0');
  return at < 0 ? OK : { ok: false, reason: `contains a NUL byte at position ${at}, which cannot be passed in an environment variable` };
}

/** A secret as a whole, wherever it goes: long enough to redact, not absurdly long. */
export function checkSecretValue(value: string): ValueVerdict {
  if (value.length < MIN_SECRET_LENGTH) return { ok: false, reason: `is shorter than ${MIN_SECRET_LENGTH} characters, too short to be redacted from output reliably` };
  if (value.length > MAX_SECRET_LENGTH) return { ok: false, reason: `is longer than ${MAX_SECRET_LENGTH} characters` };
  return OK;
}

export function checkForSink(value: string, sink: Sink): ValueVerdict {
  const whole = checkSecretValue(value);
  if (!whole.ok) return whole;
  return sink === 'header' ? checkHeaderValue(value) : checkEnvValue(value);
}

/**
 * What `gatehouse secret set` accepts. By default a value must be fit for a
 * header (no CR, LF, NUL or other controls); `multiline` allows LF and tab,
 * for PEM keys and the like that only ever go into a stdio child's env.
 */
export function checkNewValue(value: string, opts: { multiline?: boolean; allowShort?: boolean } = {}): ValueVerdict {
  if (value === '') return { ok: false, reason: 'is empty' };
  const whole = checkSecretValue(value);
  if (!whole.ok) return whole;
  if (!opts.allowShort && value.length < RECOMMENDED_SECRET_LENGTH) {
    return { ok: false, reason: `is shorter than ${RECOMMENDED_SECRET_LENGTH} characters: only the value itself, not its base64/hex/URL forms, can be redacted from output (pass --allow-short to store it anyway)` };
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (opts.multiline && (c === 0x0a || c === 0x09)) continue;
    if (c < 0x20 || c === 0x7f) {
      return { ok: false, reason: `contains ${describe(c)} at position ${i}${c === 0x0a || c === 0x09 ? ' (pass --multiline for a value that only goes into an environment variable)' : ''}` };
    }
  }
  return OK;
}
