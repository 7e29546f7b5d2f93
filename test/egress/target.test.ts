/** Proxy targets are parsed strictly: nothing ambiguous reaches a decision. */
import { describe, expect, it } from 'vitest';
import { parseAuthority, parseHttpUrl } from '../../src/egress/target.js';

describe('CONNECT authority', () => {
  const refused: Array<[string, string]> = [
    ['', 'empty'],
    ['example.com', 'CONNECT without a port'],
    ['example.com:', 'an empty port'],
    ['example.com:0', 'port 0'],
    ['example.com:65536', 'port 65536'],
    ['example.com:99999999999999999999', 'an absurd port'],
    ['example.com:+443', 'a signed port'],
    ['user:pw@example.com:443', 'userinfo'],
    ['[::1:443', 'an unclosed IPv6 bracket'],
    ['::1:443', 'an IPv6 address without brackets'],
    ['[fe80::1%eth0]:443', 'an IPv6 zone id'],
    ['[127.0.0.1]:443', 'an IPv4 address in brackets'],
    ['127.1:443', 'a short IPv4 form'],
    ['2130706433:80', 'a decimal IPv4 form'],
    ['0x7f.0.0.1:80', 'a hex IPv4 form'],
    ['exa mple.com:443', 'a space'],
    ['ex\u00e4mple.com:443', 'a non-ASCII name'],
    ['-a.com:443', 'a label starting with "-"'],
    ['a..com:443', 'an empty label'],
    [`${'a'.repeat(64)}.com:443`, 'a label of 64 characters'],
    [`${'a.'.repeat(200)}com:443`, 'an absurd length'],
  ];
  it('the table is not empty', () => expect(refused.length).toBeGreaterThan(10));
  it.each(refused)('refuses %j (%s)', (s) => expect(parseAuthority(s).ok).toBe(false));

  it.each([
    ['registry.npmjs.org:443', 'registry.npmjs.org', 443, false],
    ['Registry.NPMJS.org.:443', 'registry.npmjs.org', 443, false],
    ['127.0.0.1:8080', '127.0.0.1', 8080, true],
    ['[::1]:443', '::1', 443, true],
    ['[0:0:0:0:0:0:0:1]:443', '::1', 443, true],
    ['[::ffff:127.0.0.1]:443', '127.0.0.1', 443, true],
    ['[::ffff:a9fe:a9fe]:80', '169.254.169.254', 80, true],
    ['a_b.example.com:65535', 'a_b.example.com', 65535, false],
  ])('reads %j as one canonical host', (s, host, port, literal) => {
    expect(parseAuthority(s)).toEqual({ ok: true, value: { host, port, literal } });
  });
});

describe('absolute-form URL', () => {
  it('reads host, default port, path and query', () => {
    expect(parseHttpUrl('http://Example.com/a/b?x=1')).toEqual({
      ok: true,
      value: { host: 'example.com', port: 80, literal: false, authority: 'Example.com', path: '/a/b', pathAndQuery: '/a/b?x=1' },
    });
    expect(parseHttpUrl('http://127.0.0.1:8080')).toMatchObject({ ok: true, value: { host: '127.0.0.1', port: 8080, path: '/', pathAndQuery: '/' } });
    expect(parseHttpUrl('http://h.org?q')).toMatchObject({ ok: true, value: { path: '/', pathAndQuery: '/?q' } });
  });
  it.each([
    ['/relative', /absolute URL/],
    ['https://example.com/', /CONNECT/],
    ['ftp://example.com/', /only http/],
    ['http://user@example.com/', /userinfo/],
    ['http://example.com:0/', /1 to 65535/],
    ['http://example.com/#frag', /fragment/],
    [`http://example.com/${'a'.repeat(9_000)}`, /longer than/],
  ])('refuses %j', (url, why) => {
    const r = parseHttpUrl(url.slice(0, 9_100));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(why);
  });
});
