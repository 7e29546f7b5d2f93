import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { GatehouseError, JsonRpc, isGatehouseError, toJsonRpcError, type ErrorCode } from '../../src/errors.js';
import { classifyUpstreamError } from '../../src/upstreams/errors.js';

describe('toJsonRpcError: the one place where error codes become JSON-RPC errors', () => {
  it.each<ErrorCode>(['TOOL_UNKNOWN', 'ARGS_INVALID'])('%s is invalid params (-32602) with the message and code', (code) => {
    expect(toJsonRpcError(new GatehouseError(code, 'why'))).toEqual({ code: -32602, message: 'why', data: { code } });
  });

  it.each<ErrorCode>(['AUDIT_UNAVAILABLE', 'UPSTREAM_UNAVAILABLE', 'POLICY_INVALID', 'CONFIG_INVALID'])('%s is -32603 with its message', (code) => {
    expect(toJsonRpcError(new GatehouseError(code, 'why'))).toEqual({ code: -32603, message: 'why', data: { code } });
  });

  it('INTERNAL hides its message (it may hold anything)', () => {
    expect(toJsonRpcError(new GatehouseError('INTERNAL', 'stack trace with /home/secret'))).toEqual({ code: -32603, message: 'Internal gateway error', data: { code: 'INTERNAL' } });
  });

  it.each([
    ['a plain Error', new Error('boom /etc/passwd')],
    ['a SyntaxError (must never look like a parse error)', new SyntaxError('Unexpected token } in JSON')],
    ['a string', 'oops'],
    ['undefined', undefined],
    ['null', null],
  ])('anything that is not a GatehouseError (%s) is -32603, never -32700, and says nothing', (_what, e) => {
    const j = toJsonRpcError(e);
    expect(j).toEqual({ code: JsonRpc.InternalError, message: 'Internal gateway error' });
    expect(j.code).not.toBe(JsonRpc.ParseError);
  });

  it('isGatehouseError checks the class and optionally the code', () => {
    const e = new GatehouseError('AUTH_INVALID', 'x');
    expect(isGatehouseError(e)).toBe(true);
    expect(isGatehouseError(e, 'AUTH_INVALID')).toBe(true);
    expect(isGatehouseError(e, 'USAGE')).toBe(false);
    expect(isGatehouseError(new Error('x'))).toBe(false);
  });
});

describe('classifyUpstreamError: whatever an upstream call throws gets a stable code', () => {
  it.each([
    [new McpError(-32001, 'Request timed out'), 'UPSTREAM_TIMEOUT', 'connector "c" did not answer within 500 ms'],
    [new McpError(-32000, 'Connection closed'), 'UPSTREAM_UNAVAILABLE', 'connector "c" closed the connection during the call (it will be restarted)'],
    [new McpError(-32602, 'bad thing'), 'UPSTREAM_ERROR', 'connector "c" answered with an error: bad thing'],
    [Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNREFUSED' } }), 'UPSTREAM_UNAVAILABLE', 'connector "c" is unreachable (ECONNREFUSED)'],
    [Object.assign(new Error('x'), { code: 'UND_ERR_SOCKET' }), 'UPSTREAM_UNAVAILABLE', 'connector "c" is unreachable (UND_ERR_SOCKET)'],
    [Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }), 'UPSTREAM_ERROR', 'call to connector "c" was cancelled'],
    [new Error('weird'), 'UPSTREAM_PROTOCOL', 'connector "c" failed: weird'],
    // A fault of the gateway's own code: INTERNAL, whose text the agent never sees (only "Internal gateway error").
    [new TypeError("Cannot read properties of undefined (reading 'x')"), 'INTERNAL', `call to connector "c" hit a gateway fault: Cannot read properties of undefined (reading 'x')`],
    [new ReferenceError('y is not defined'), 'INTERNAL', 'call to connector "c" hit a gateway fault: y is not defined'],
  ])('%s → %s', (e, code, message) => {
    // Only the -32000 case depends on it: the connection did close there.
    const g = classifyUpstreamError('c', e, { timeoutMs: 500, connectionClosed: true });
    expect(g.code).toBe(code);
    expect(g.message).toBe(message);
  });

  it('JSON-RPC -32000 from an upstream whose connection is open is its answer, not "closed the connection"', () => {
    const g = classifyUpstreamError('c', new McpError(-32000, 'quota exhausted'), { timeoutMs: 500, connectionClosed: false });
    expect(g.code).toBe('UPSTREAM_ERROR');
    expect(g.message).toBe('connector "c" answered with an error: quota exhausted');
    expect(g.details).toEqual({ upstreamCode: -32000 });
  });

  it('a GatehouseError passes through unchanged', () => {
    const e = new GatehouseError('SECRET_MISSING', 'x');
    expect(classifyUpstreamError('c', e, { timeoutMs: 1, connectionClosed: false })).toBe(e);
  });
});
