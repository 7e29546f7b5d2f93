/** Tool parameters mirrored into Mcp-Param-* headers (src/upstreams/param-headers.ts): pure. */
import { describe, expect, it } from 'vitest';
import { decodeHeaderValue, encodeParamValue, paramDeclarations, paramHeaderProblem, paramHeaders } from '../../src/upstreams/param-headers.js';

const SCHEMA = {
  type: 'object',
  properties: {
    region: { type: 'string', 'x-mcp-header': 'Region' },
    count: { type: 'integer', 'x-mcp-header': 'Count' },
    flag: { type: 'boolean', 'x-mcp-header': 'Flag' },
    nested: { type: 'object', properties: { zone: { type: 'string', 'x-mcp-header': 'Zone' } } },
    bad: { type: 'string', 'x-mcp-header': 'Not a token' },
    dup: { type: 'string', 'x-mcp-header': 'region' },
    plain: { type: 'string' },
  },
};
const decls = paramDeclarations(SCHEMA);
const from = (h: Record<string, string>) => (n: string) => h[n];

describe('declarations', () => {
  it('are read along properties chains; an invalid or duplicate name is left out', () => {
    expect(decls.map((d) => [d.path.join('.'), d.header])).toEqual([
      ['region', 'mcp-param-region'],
      ['count', 'mcp-param-count'],
      ['flag', 'mcp-param-flag'],
      ['nested.zone', 'mcp-param-zone'],
    ]);
  });
});

describe('values (transports §Value Encoding)', () => {
  it.each([
    ['us-west1', 'us-west1'],
    [42, '42'],
    [false, 'false'],
    ['Hello, 世界', '=?base64?SGVsbG8sIOS4lueVjA==?='],
    [' padded ', '=?base64?IHBhZGRlZCA=?='],
    ['line1\nline2', '=?base64?bGluZTEKbGluZTI=?='],
    ['=?base64?literal?=', '=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?='],
  ])('%j is sent as %s, and read back', (v, header) => {
    expect(encodeParamValue(v)).toBe(header);
    expect(decodeHeaderValue(header)).toBe(String(v));
  });

  it('null, objects and arrays have no header', () => {
    for (const v of [null, undefined, { a: 1 }, [1]]) expect(encodeParamValue(v)).toBeUndefined();
  });
});

describe('checking a request (transports §Server Behavior for Custom Headers)', () => {
  const args = { region: 'eu', count: 42, flag: true, nested: { zone: 'b' } };
  it('the headers a client must send pass', () => {
    expect(paramHeaderProblem(decls, args, from(paramHeaders(decls, args)))).toBeUndefined();
    expect(paramHeaderProblem(decls, args, from({ ...paramHeaders(decls, args), 'mcp-param-count': '42.0' }))).toBeUndefined();
  });

  it.each([
    ['a missing header for a value in the body', { 'mcp-param-count': '42', 'mcp-param-flag': 'true', 'mcp-param-zone': 'b' }, /Mcp-Param-region header is required/],
    ['a header that disagrees', { 'mcp-param-region': 'us', 'mcp-param-count': '42', 'mcp-param-flag': 'true', 'mcp-param-zone': 'b' }, /does not match region/],
    ['a number that is another number', { 'mcp-param-region': 'eu', 'mcp-param-count': '43', 'mcp-param-flag': 'true', 'mcp-param-zone': 'b' }, /does not match count/],
    ['a malformed Base64 value', { 'mcp-param-region': '=?base64?***?=', 'mcp-param-count': '42', 'mcp-param-flag': 'true', 'mcp-param-zone': 'b' }, /malformed/],
  ])('refuses %s', (_, headers, why) => {
    expect(paramHeaderProblem(decls, args, from(headers))).toMatch(why);
  });

  it('refuses a header whose value the arguments do not have', () => {
    expect(paramHeaderProblem(decls, { region: 'eu' }, from({ 'mcp-param-region': 'eu', 'mcp-param-count': '1' }))).toMatch(/names a value the arguments do not have/);
  });
});
