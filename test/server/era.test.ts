/**
 * Which era a POST belongs to, and the 2026-07-28 edge checks (src/server/era.ts):
 * pure, no server. 2025 traffic must come out untouched, whatever headers it has.
 */
import { describe, expect, it } from 'vitest';
import { classifyEra, decodeHeaderValue } from '../../src/server/era.js';

const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };
const call = (name: string, meta: Record<string, unknown> = META) => ({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name, arguments: {}, _meta: meta } });
const headers = (h: Record<string, string>) => (n: string) => h[n.toLowerCase()];
const modernHeaders = (over: Record<string, string> = {}) => headers({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'fx__echo', ...over });

describe('2025-11-25 traffic is left to the 2025 path', () => {
  it.each([
    ['initialize', { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '1' } } }],
    ['a session request without an envelope', { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }],
    ['a notification', { jsonrpc: '2.0', method: 'notifications/initialized' }],
    ['a response to a server request', { jsonrpc: '2.0', id: 3, result: {} }],
    ['a body that is not JSON-RPC (the 2025 path answers its own parse error)', { hello: 'world' }],
  ])('%s', (_, body) => {
    expect(classifyEra(headers({ 'mcp-protocol-version': '2025-11-25', 'mcp-method': 'anything' }), body)).toEqual({ era: 'legacy' });
  });
});

describe('2026-07-28 requests', () => {
  it('a well-formed tools/call is modern', () => {
    expect(classifyEra(modernHeaders(), call('fx__echo'))).toMatchObject({ era: 'modern', kind: 'request', version: '2026-07-28' });
  });

  it.each([
    ['Mcp-Name names another tool', modernHeaders({ 'mcp-name': 'fx__other' }), -32020],
    ['Mcp-Name is missing', headers({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call' }), -32020],
    ['Mcp-Method is missing', headers({ 'mcp-protocol-version': '2026-07-28', 'mcp-name': 'fx__echo' }), -32020],
    ['Mcp-Method names another method', modernHeaders({ 'mcp-method': 'tools/list' }), -32020],
    ['MCP-Protocol-Version is missing', headers({ 'mcp-method': 'tools/call', 'mcp-name': 'fx__echo' }), -32020],
    ['Mcp-Name carries a control character', modernHeaders({ 'mcp-name': 'fx__echo\u0001' }), -32020],
  ])('%s: 400 %i', (_, h, code) => {
    expect(classifyEra(h, call('fx__echo'))).toMatchObject({ era: 'reject', status: 400, code, id: 9 });
  });

  it('an unknown version is -32022 naming what is served and what was asked', () => {
    const v = classifyEra(modernHeaders({ 'mcp-protocol-version': '2099-01-01' }), call('fx__echo', { ...META, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' }));
    expect(v).toMatchObject({ era: 'reject', status: 400, code: -32022, data: { supported: ['2026-07-28'], requested: '2099-01-01' } });
  });

  it('an envelope without clientCapabilities is -32602', () => {
    const v = classifyEra(modernHeaders(), call('fx__echo', { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' }));
    expect(v).toMatchObject({ era: 'reject', status: 400, code: -32602 });
  });
});

describe('Mcp-Name values (transports §Value Encoding)', () => {
  it('plain ASCII as is; the Base64 sentinel decoded', () => {
    expect(decodeHeaderValue('fx__echo')).toBe('fx__echo');
    expect(decodeHeaderValue(`=?base64?${Buffer.from('日本語 tool').toString('base64')}?=`)).toBe('日本語 tool');
  });

  it.each([
    ['bad Base64', '=?base64?!!!?='],
    ['Base64 of a length no encoder writes', '=?base64?abcde?='],
    ['Base64 of bytes that are not UTF-8', `=?base64?${Buffer.from([0xff, 0xfe]).toString('base64')}?=`],
    ['a raw non-ASCII value', 'tööl'],
    ['a raw control character', 'a\nb'],
  ])('%s is malformed', (_, raw) => {
    expect(decodeHeaderValue(raw)).toBeUndefined();
  });
});
