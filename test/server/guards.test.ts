import { describe, expect, it } from 'vitest';
import { allowedHosts, allowedOrigins, checkHost, checkOrigin } from '../../src/server/guards.js';

const hosts = allowedHosts(8931, ['Gate.Example:443']);
const origins = allowedOrigins(8931, ['https://App.Example']);

describe('checkHost (DNS rebinding: the Host must be ours)', () => {
  it('the allowed list is exactly our loopback names on our port and the configured extras (lower-cased), nothing wider', () => {
    expect([...hosts].sort()).toEqual(['127.0.0.1:8931', '[::1]:8931', 'gate.example:443', 'localhost:8931']);
    expect([...allowedHosts(8931)].sort()).toEqual(['127.0.0.1:8931', '[::1]:8931', 'localhost:8931']);
    expect([...origins].sort()).toEqual(['http://127.0.0.1:8931', 'http://[::1]:8931', 'http://localhost:8931', 'https://app.example']);
  });

  it.each(['127.0.0.1:8931', 'localhost:8931', '[::1]:8931', 'LOCALHOST:8931', 'gate.example:443'])('accepts %s', (h) => {
    expect(checkHost(h, hosts)).toEqual({ ok: true });
  });

  it.each([
    ['a rebound name', 'attacker.example:8931'],
    ['our name on another port', '127.0.0.1:8932'],
    ['no port', '127.0.0.1'],
    ['a suffix trick', 'localhost:8931.attacker.example'],
    ['userinfo', 'x@127.0.0.1:8931'],
    ['0.0.0.0', '0.0.0.0:8931'],
    ['a trailing dot', 'localhost.:8931'],
  ])('refuses %s with 403', (_what, h) => {
    const v = checkHost(h, hosts);
    expect(v).toMatchObject({ ok: false, status: 403 });
    expect(v.ok === false && v.message).toContain('is not allowed');
  });

  it.each([undefined, ''])('refuses a missing Host (%j)', (h) => {
    expect(checkHost(h, hosts)).toEqual({ ok: false, status: 403, message: 'Forbidden: missing Host header' });
  });

  it('quotes at most 100 characters of a hostile Host in the message', () => {
    const v = checkHost('a'.repeat(5000), hosts);
    expect(v.ok === false && v.message.length).toBeLessThan(200);
  });
});

describe('checkOrigin (browsers must come from our own origin)', () => {
  it('a request without Origin (not a browser) passes', () => {
    expect(checkOrigin(undefined, origins)).toEqual({ ok: true });
  });

  it.each(['http://127.0.0.1:8931', 'http://localhost:8931', 'http://[::1]:8931', 'HTTP://LOCALHOST:8931', 'https://app.example'])('accepts %s', (o) => {
    expect(checkOrigin(o, origins)).toEqual({ ok: true });
  });

  it.each([
    ['another site', 'http://evil.example'],
    ['"null" (sandboxed iframe, file://)', 'null'],
    ['https on our port', 'https://127.0.0.1:8931'],
    ['another port', 'http://127.0.0.1:8932'],
    ['with a path', 'http://127.0.0.1:8931/x'],
    ['empty', ''],
  ])('refuses %s with 403', (_what, o) => {
    expect(checkOrigin(o, origins)).toMatchObject({ ok: false, status: 403 });
  });
});
