import { describe, expect, it } from 'vitest';
import { checkEnvValue, checkForSink, checkHeaderValue, checkNewValue } from '../../src/secrets/safety.js';

const INJECTIONS = ['tok\r\nX-Evil: 1', 'tok\nX-Evil: 1', 'tok\rX-Evil: 1', 'tok\0X-Evil: 1', 'tok\u000bx', 'tok\u007fx', 'tok\tx', 'tok\u2028x'];

describe('secret value checks', () => {
  it('header_injection_via_secret_value_is_refused (CR, LF, NUL, other controls, beyond Latin-1)', () => {
    expect(INJECTIONS.length).toBeGreaterThan(0);
    for (const v of INJECTIONS) {
      const verdict = checkHeaderValue(v);
      expect(verdict.ok, JSON.stringify(v)).toBe(false);
      if (!verdict.ok) expect(verdict.reason).not.toContain('X-Evil');
    }
    expect(checkHeaderValue('ghp_abc/DEF+ghi=')).toEqual({ ok: true });
  });

  it('env values may hold newlines (PEM keys) but never NUL', () => {
    expect(checkEnvValue('-----BEGIN KEY-----\nabc\n-----END KEY-----')).toEqual({ ok: true });
    expect(checkEnvValue('abc\0def').ok).toBe(false);
  });

  it('values too short to redact are never used', () => {
    expect(checkForSink('abc', 'header').ok).toBe(false);
    expect(checkForSink('abcd', 'env').ok).toBe(true);
  });

  it('gatehouse secret set refuses empty, short, and control characters unless asked', () => {
    expect(checkNewValue('').ok).toBe(false);
    expect(checkNewValue('short').ok).toBe(false);
    expect(checkNewValue('short', { allowShort: true }).ok).toBe(true);
    expect(checkNewValue('abc').ok).toBe(false);
    expect(checkNewValue('line-one\nline-two').ok).toBe(false);
    expect(checkNewValue('line-one\nline-two', { multiline: true }).ok).toBe(true);
    expect(checkNewValue('line-one\r\nline-two', { multiline: true }).ok).toBe(false);
    expect(checkNewValue('nul-inside\0value', { multiline: true }).ok).toBe(false);
    expect(checkNewValue('ghp_0123456789abcdef').ok).toBe(true);
  });
});
