/**
 * One rule for the record of something already done (appendOrQueue): never
 * silently swallowed. Written, or kept in the writer's late queue and written
 * after recovery (marked not delivered), or lost (closed log) — logged once
 * either way — and the deed is not undone. One test per kind of call site.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { appendOrQueue } from '../../src/audit/append-or-queue.js';
import type { AuditEvent, AuditSink, KeptRecord } from '../../src/audit/types.js';
import { RefusalSummaries } from '../../src/broker/refusal-summary.js';
import { silentLogger } from '../../src/log.js';
import { createApp } from '../../src/server/app.js';
import { allowedHosts, allowedOrigins } from '../../src/server/guards.js';
import { SessionManager } from '../../src/server/mcp-sessions.js';
import { revocationRoutes } from '../../src/server/revocation-routes.js';
import { createAdminApi } from '../../src/server/admin.js';
import type { Gateway } from '../../src/broker/gateway.js';
import type { Approvals } from '../../src/policy/approvals.js';
import { ERROR_TABLE } from '../../src/errors.js';
import type { RevocationList } from '../../src/server/revocations.js';
import { initializeBody, MCP_HEADERS, until } from '../helpers/gateway.js';
import { call, countingFs, lines, openLog, tempState } from './helpers.js';

/** A logger whose lines are kept. */
function keptLogger() {
  const seen: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (t: string) => void seen.push(JSON.parse(t) as Record<string, unknown>) });
  return { logger, seen };
}

/** A sink whose every record of something done is answered `kept` (the writer's answer while it is down). */
function downSink(kept: KeptRecord['state'] = 'queued') {
  const offered: AuditEvent[] = [];
  const error = Object.assign(new Error('ENOSPC: simulated'), { code: 'AUDIT_UNAVAILABLE' });
  const sink: AuditSink = {
    append: async () => {
      throw error;
    },
    appendOrQueue: async (e) => {
      offered.push(e);
      return kept === 'written' ? { state: 'written' } : { state: kept, error };
    },
    assertWritable: () => {
      throw error;
    },
    close: async () => undefined,
  };
  return { sink, offered };
}

describe('appendOrQueue on the real writer', () => {
  it('while the log cannot be written: never rejects, the writer keeps the record, logs it once, and writes it after recovery', async () => {
    const { dir } = tempState();
    const fs = countingFs();
    const log = await openLog(dir, { fs, retryMs: 20 });
    const { logger, seen } = keptLogger();
    fs.failWith = 'ENOSPC';
    await expect(log.append(call(0))).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    fs.failWith = 'ENOSPC';
    const kept = await appendOrQueue(log, { event: 'session.closed', agent: 'a', session: 's1', reason: 'idle' }, logger);
    expect(kept).toMatchObject({ state: 'queued' });
    expect(log.lateRecords).toBe(1);
    expect(seen.filter((l) => l.event === 'session.closed')).toEqual([expect.objectContaining({ msg: 'audit: record kept until the log can be written again' })]);
    fs.failWith = undefined;
    await until(() => log.lateRecords === 0 && log.failed === undefined, 'the log to recover and drain', 5000);
    await log.flush();
    await log.close();
    const recs = lines(`${dir}/audit.jsonl`).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs.find((r) => r.event === 'session.closed')).toMatchObject({ session: 's1', delivered: false });
  });

  it('on a working log it is written and nothing is logged', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    const { logger, seen } = keptLogger();
    expect(await appendOrQueue(log, { event: 'policy.reload', ok: true }, logger)).toEqual({ state: 'written' });
    expect(seen).toEqual([]);
    await log.close();
  });

  it('on a closed log the record is lost, said so at error level, and the caller does not throw', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    await log.close();
    const { logger, seen } = keptLogger();
    expect(await appendOrQueue(log, { event: 'gateway.stop' }, logger)).toMatchObject({ state: 'lost' });
    expect(seen).toEqual([expect.objectContaining({ level: 50, event: 'gateway.stop', msg: 'audit: record could not be written' })]);
  });

  it('a sink without a late queue: a failed append is lost and logged, never thrown (even a synchronous throw)', async () => {
    const { logger, seen } = keptLogger();
    const rejecting: AuditSink = { append: () => Promise.reject(new Error('down')), assertWritable: () => undefined, close: async () => undefined };
    const throwing: AuditSink = {
      append: () => {
        throw new Error('sync');
      },
      assertWritable: () => undefined,
      close: async () => undefined,
    };
    expect(await appendOrQueue(rejecting, { event: 'x' }, logger)).toMatchObject({ state: 'lost' });
    expect(await appendOrQueue(throwing, { event: 'y' }, logger)).toMatchObject({ state: 'lost' });
    expect(seen.map((l) => l.event)).toEqual(['x', 'y']);
  });
});

describe('call sites', () => {
  it('session close: the session is closed, and its record is offered to the late queue', async () => {
    const { sink, offered } = downSink();
    const sessions = new SessionManager({ makeServer: () => new Server({ name: 't', version: '1' }, { capabilities: {} }), audit: { ...sink, appendOrQueue: async (e) => (e.event === 'session.opened' ? { state: 'written' } : sink.appendOrQueue!(e)) }, logger: silentLogger });
    const app = createApp({ sessions, authenticate: async () => ({ ok: true, identity: { agent: 'a', via: 'token' } }), hosts: allowedHosts(8931), origins: allowedOrigins(8931), logger: silentLogger });
    const r = await app.request('/mcp', { method: 'POST', headers: { host: '127.0.0.1:8931', ...MCP_HEADERS }, body: JSON.stringify(initializeBody()) });
    expect(r.status).toBe(200);
    expect(sessions.size).toBe(1);
    await sessions.closeAll();
    expect(sessions.size).toBe(0);
    expect(offered.map((e) => e.event)).toEqual(['session.closed']);
  });

  it('session open that is not on record: the session is closed before any call, its record kept for later', async () => {
    const { sink, offered } = downSink();
    const sessions = new SessionManager({ makeServer: () => new Server({ name: 't', version: '1' }, { capabilities: {} }), audit: sink, logger: silentLogger });
    const app = createApp({ sessions, authenticate: async () => ({ ok: true, identity: { agent: 'a', via: 'token' } }), hosts: allowedHosts(8931), origins: allowedOrigins(8931), logger: silentLogger });
    await app.request('/mcp', { method: 'POST', headers: { host: '127.0.0.1:8931', ...MCP_HEADERS }, body: JSON.stringify(initializeBody()) });
    await until(() => sessions.size === 0, 'the unrecorded session to be closed', 5000);
    expect(offered.map((e) => e.event)).toEqual(['session.opened', 'session.closed']);
    await sessions.closeAll();
  });

  it('token revocation: in force even when the log is down; the admin is told whether its record is kept', async () => {
    let revoked = 0;
    const list = { revoke: (what: { jti: string }) => (revoked++, { jti: what.jti }) } as unknown as RevocationList;
    const admin = (sink: AuditSink) =>
      createAdminApi({ gateway: {} as Gateway, sessions: {} as SessionManager, approvals: {} as Approvals, mounts: [{ path: '/tokens', app: revocationRoutes(list, sink, silentLogger) }] });
    const revoke = (sink: AuditSink, jti: string) => admin(sink).request('/tokens/revoke', { method: 'POST', body: JSON.stringify({ jti }) });
    const down = downSink();
    const r = await revoke(down.sink, 'j-1');
    expect(revoked).toBe(1);
    expect(down.offered).toEqual([{ event: 'token.revoked', jti: 'j-1', via: 'gateway' }]);
    expect(r.status).toBe(ERROR_TABLE.AUDIT_UNAVAILABLE.http);
    expect(await r.json()).toEqual({ error: { code: 'AUDIT_UNAVAILABLE', message: 'the revocation is in force, but its audit record is kept and written when the log recovers: ENOSPC: simulated' } });
    const lost = await revoke(downSink('lost').sink, 'j-2');
    expect(revoked).toBe(2);
    expect(await lost.json()).toMatchObject({ error: { message: expect.stringContaining('its audit record could not be written') } });
    expect((await revoke(downSink('written').sink, 'j-3')).status).toBe(200);
  });

  it('a summary of refused requests is offered to the late queue, not dropped', async () => {
    const { sink, offered } = downSink();
    const summaries = new RefusalSummaries({ audit: sink, logger: silentLogger, intervalMs: 3_600_000 });
    summaries.note({ connector: 'c', kind: 'sampling' }, 'over the limit', true);
    summaries.note({ connector: 'c', kind: 'sampling' }, 'over the limit', true);
    await summaries.close();
    expect(offered).toEqual([expect.objectContaining({ event: 'sampling.request', connector: 'c', repeated: 1, rateLimited: true })]);
  });
});
