import { beforeAll, describe, expect, it } from 'vitest';
import { auditRoutes } from '../../src/audit/http.js';
import { queryAudit, type AuditFilters } from '../../src/audit/query.js';
import type { AuditRecord } from '../../src/audit/types.js';
import { call, lines, openLog, tempState } from './helpers.js';
import { listAuditFiles } from '../../src/audit/files.js';

let dir: string;
let all: AuditRecord[];
const N = 400;

beforeAll(async () => {
  ({ dir } = tempState());
  const log = await openLog(dir, { maxFileBytes: 16 * 1024, checkpointEvery: 100 });
  for (let i = 0; i < N; i++) await log.append(call(i, i === 123 ? { args: { note: 'needle "quoted" text' } } : {}));
  await log.append({ event: 'session.opened', agent: 'agent-1', session: 's-x' });
  await log.append({ event: 'model.call.intent', agent: 'agent-1', provider: 'anthropic', connector: 'anthropic', model: 'claude-x' });
  await log.append({ event: 'model.call', agent: 'agent-1', provider: 'anthropic', connector: 'anthropic', model: 'claude-x', outcome: 'ok' });
  await log.close();
  all = listAuditFiles(dir).flatMap((f) => lines(f.path).map((l) => JSON.parse(l) as AuditRecord));
  expect(listAuditFiles(dir).length).toBeGreaterThan(3);
});

async function everything(filters: AuditFilters, order: 'asc' | 'desc', limit: number): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await queryAudit(dir, filters, { order, limit, ...(cursor ? { cursor } : {}) });
    out.push(...page.records);
    if (!page.more) break;
    cursor = page.nextCursor ?? undefined;
  }
  return out;
}

describe('queryAudit', () => {
  const cases: [string, AuditFilters, (r: AuditRecord) => boolean][] = [
    ['agent', { agent: 'agent-1' }, (r) => r.agent === 'agent-1'],
    ['connector + decision', { connector: 'slack', decision: 'deny' }, (r) => r.connector === 'slack' && r.decision === 'deny'],
    ['tool glob', { tool: 'github__*' }, (r) => typeof r.tool === 'string' && r.tool.startsWith('github__')],
    ['outcome', { outcome: 'denied' }, (r) => r.outcome === 'denied'],
    ['event', { event: 'session.opened' }, (r) => r.event === 'session.opened'],
    ['event glob (model calls and their intents, one timeline with tool calls otherwise)', { event: 'model.*' }, (r) => r.event.startsWith('model.')],
    ['a provider as connector', { connector: 'anthropic', event: 'model.call' }, (r) => r.event === 'model.call' && r.connector === 'anthropic'],
    ['grep with quotes', { grep: 'needle "quoted"' }, (r) => JSON.stringify(r).includes('needle \\"quoted\\"')],
    ['no filter', {}, () => true],
  ];
  expect(cases.length).toBeGreaterThan(0);

  for (const [name, filters, pred] of cases) {
    it(`filters by ${name}, across rotated files, newest first and oldest first, paged`, async () => {
      const want = all.filter(pred);
      expect(want.length).toBeGreaterThan(0);
      const asc = await everything(filters, 'asc', 37);
      expect(asc.map((r) => r.seq)).toEqual(want.map((r) => r.seq));
      const desc = await everything(filters, 'desc', 29);
      expect(desc.map((r) => r.seq)).toEqual(want.map((r) => r.seq).reverse());
    });
  }

  it('time window', async () => {
    const mid = all[200] as AuditRecord;
    const since = new Date(mid.time);
    const got = await everything({ since }, 'asc', 1000);
    expect(got.map((r) => r.seq)).toEqual(all.filter((r) => r.time >= mid.time).map((r) => r.seq));
    const before = await everything({ until: since }, 'desc', 1000);
    expect(before.every((r) => r.time < mid.time)).toBe(true);
  });

  it('an oldest-first cursor at the end picks up records written later (follow)', async () => {
    const { dir: d } = tempState();
    let log = await openLog(d);
    await log.append(call(1));
    await log.close();
    const first = await queryAudit(d, {}, { order: 'asc' });
    log = await openLog(d);
    await log.append(call(2, { agent: 'late' }));
    await log.close();
    const next = await queryAudit(d, { agent: 'late' }, { order: 'asc', cursor: first.nextCursor ?? '' });
    expect(next.records.map((r) => r.agent)).toEqual(['late']);
  });

  it('rejects a cursor from the other order', async () => {
    const p = await queryAudit(dir, {}, { order: 'asc', limit: 1 });
    await expect(queryAudit(dir, {}, { order: 'desc', cursor: p.nextCursor ?? '' })).rejects.toMatchObject({ code: 'USAGE' });
  });
});

describe('auditRoutes (GET /admin/v1/audit)', () => {
  const app = () => auditRoutes(dir);

  it('returns a page with the same filters as query parameters and a cursor', async () => {
    const res = await app().request('/?agent=agent-2&limit=10&order=asc');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { records: AuditRecord[]; nextCursor: string; more: boolean };
    expect(body.records).toHaveLength(10);
    expect(body.records.every((r) => r.agent === 'agent-2')).toBe(true);
    const res2 = await app().request(`/?agent=agent-2&limit=10&order=asc&cursor=${encodeURIComponent(body.nextCursor)}`);
    const body2 = (await res2.json()) as { records: AuditRecord[] };
    expect(body2.records[0]?.seq).toBeGreaterThan(body.records[9]?.seq ?? Infinity);
  });

  it('400 on an unknown or repeated parameter, bad limit, bad time, bad cursor', async () => {
    for (const q of ['?agnet=x', '?agent=a&agent=b', '?limit=0', '?limit=abc', '?since=yesterday', '?order=up', '?cursor=xyz']) {
      const res = await app().request(`/${q}`);
      expect(res.status, q).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('USAGE');
    }
  });

  it('since as a duration', async () => {
    const res = await app().request('/?since=1h&event=session.opened');
    expect(((await res.json()) as { records: unknown[] }).records).toHaveLength(1);
  });
});

