/**
 * The one error table: every ErrorCode has its JSON-RPC code, HTTP status and
 * exit code in ERROR_TABLE, and each edge (JSON-RPC, admin API, audit query,
 * CLI exit) answers with the table's value; an internal error's text never
 * leaves the gateway.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hono } from 'hono';
import { afterAll, describe, expect, it } from 'vitest';
import { auditRoutes } from '../../src/audit/http.js';
import type { Gateway } from '../../src/broker/gateway.js';
import { FAILURE_CODE, ProviderError, type FailureKind } from '../../src/connectors/errors.js';
import { PathArgError } from '../../src/connectors/paths.js';
import { failureResult } from '../../src/connectors/server.js';
import type { ProviderApi } from '../../src/connectors/api.js';
import { ERROR_TABLE, Exit, GatehouseError, JsonRpc, exitCodeFor, toHttpError, toJsonRpcError, type ErrorCode } from '../../src/errors.js';
import type { Approvals } from '../../src/policy/approvals.js';
import { createAdminApi } from '../../src/server/admin.js';
import type { SessionManager } from '../../src/server/mcp-sessions.js';
import { tempDir } from '../helpers/tmp.js';

const CODES = Object.keys(ERROR_TABLE) as ErrorCode[];
const LEAK = 'EACCES: /home/admin/.gatehouse/keys/token.jwk\n    at Object.openSync (node:fs:573:3)';

describe('ERROR_TABLE', () => {
  it('has a row for every error code (and the list under test is not empty)', () => {
    expect(CODES.length).toBeGreaterThanOrEqual(27);
    for (const code of CODES) {
      const row = ERROR_TABLE[code];
      expect(Number.isInteger(row.jsonRpc) && row.jsonRpc < 0, code).toBe(true);
      expect(row.http >= 400 && row.http <= 599, code).toBe(true);
      expect(Object.values(Exit), code).toContain(row.exit);
      expect(row.exit, code).not.toBe(Exit.Ok);
    }
  });

  it.each(CODES)('%s: JSON-RPC, HTTP and exit code come from its row', (code) => {
    const e = new GatehouseError(code, 'why');
    expect(toJsonRpcError(e)).toEqual({ code: ERROR_TABLE[code].jsonRpc, message: code === 'INTERNAL' ? 'Internal gateway error' : 'why', data: { code } });
    expect(toHttpError(e)).toEqual({ status: ERROR_TABLE[code].http, code, message: code === 'INTERNAL' ? 'Internal gateway error' : 'why' });
    expect(exitCodeFor(e)).toBe(ERROR_TABLE[code].exit);
  });

  it("keeps the agent's JSON-RPC codes as they were: only an unknown tool or bad arguments are invalid params", () => {
    for (const code of CODES) expect(ERROR_TABLE[code].jsonRpc, code).toBe(code === 'TOOL_UNKNOWN' || code === 'ARGS_INVALID' ? JsonRpc.InvalidParams : JsonRpc.InternalError);
  });

  it('keeps the documented exit codes: 2 usage or configuration, 3 a needed service unavailable, 1 otherwise', () => {
    for (const code of CODES) {
      const want = ['USAGE', 'CONFIG_INVALID', 'POLICY_INVALID'].includes(code) ? Exit.Usage : code.endsWith('_UNAVAILABLE') ? Exit.Unavailable : Exit.Failed;
      expect(ERROR_TABLE[code].exit, code).toBe(want);
    }
  });

  it('anything that is not a GatehouseError is INTERNAL everywhere, and says nothing of itself', () => {
    expect(toHttpError(new Error(LEAK))).toEqual({ status: 500, code: 'INTERNAL', message: 'Internal gateway error' });
    expect(exitCodeFor(new Error(LEAK))).toBe(Exit.Failed);
  });
});

describe('admin API edge', () => {
  const thrower = new Hono();
  thrower.get('/:code', (c) => {
    const code = c.req.param('code');
    if (code === 'plain') throw new Error(LEAK);
    throw new GatehouseError(code as ErrorCode, `failed with ${code}`);
  });
  const api = createAdminApi({ gateway: {} as Gateway, sessions: {} as SessionManager, approvals: {} as Approvals, mounts: [{ path: '/throw', app: thrower }] });

  it.each(CODES)('a GatehouseError %s answers the table HTTP status with its code', async (code) => {
    const r = await api.request(`/throw/${code}`);
    expect(r.status).toBe(ERROR_TABLE[code].http);
    expect(await r.json()).toEqual({ error: { code, message: code === 'INTERNAL' ? 'Internal gateway error' : `failed with ${code}` } });
  });

  it("a thrown non-Gatehouse error's text (a path, a stack) never reaches the admin client", async () => {
    const r = await api.request('/throw/plain');
    expect(r.status).toBe(500);
    const text = await r.text();
    expect(text).not.toMatch(/home\/admin|openSync|EACCES/);
    expect(JSON.parse(text)).toEqual({ error: { code: 'INTERNAL', message: 'Internal gateway error' } });
  });
});

describe('audit query edge', () => {
  const dir = tempDir('gh-errtable-');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a bad parameter is USAGE at its table status', async () => {
    const r = await auditRoutes(dir).request('/?limit=0');
    expect(r.status).toBe(ERROR_TABLE.USAGE.http);
    expect(await r.json()).toMatchObject({ error: { code: 'USAGE' } });
  });

  it('a log that cannot be read is AUDIT_UNAVAILABLE at its table status, without the file system error', async () => {
    const notADir = join(dir, 'audit-is-a-file');
    writeFileSync(notADir, 'x');
    const r = await auditRoutes(notADir).request('/');
    expect(r.status).toBe(ERROR_TABLE.AUDIT_UNAVAILABLE.http);
    const text = await r.text();
    expect(text).not.toContain(dir);
    expect(JSON.parse(text)).toEqual({ error: { code: 'AUDIT_UNAVAILABLE', message: 'the audit log cannot be read' } });
  });
});

describe('provider failures are GatehouseErrors', () => {
  const kinds = Object.keys(FAILURE_CODE) as FailureKind[];
  const api = { errorContext: { provider: 'GitHub', connector: 'gh', secrets: ['github-token'] } } as unknown as ProviderApi;

  it.each(kinds)('kind %s has its code, and its tool result still names the kind', (kind) => {
    const e = new ProviderError(kind, 'GitHub said no', { status: 418 });
    expect(e).toBeInstanceOf(GatehouseError);
    expect(e.code).toBe(FAILURE_CODE[kind]);
    expect(e.details).toEqual({ kind, status: 418 });
    const r = failureResult(e, api);
    expect(r.isError).toBe(true);
    expect(JSON.stringify(r)).toContain(`"kind":"${kind}"`);
  });

  it('the list of kinds under test is not empty', () => expect(kinds.length).toBeGreaterThan(0));

  it('a refused path argument is ARGS_INVALID naming the argument, and its tool result says nothing was sent', () => {
    const e = new PathArgError('repo', 'repo may not contain "/"');
    expect(e).toBeInstanceOf(GatehouseError);
    expect(e).toMatchObject({ code: 'ARGS_INVALID', arg: 'repo', details: { arg: 'repo' } });
    expect(failureResult(e, api)).toMatchObject({ isError: true, content: [{ text: 'Invalid argument: repo may not contain "/". Nothing was sent to GitHub.' }] });
  });
});
