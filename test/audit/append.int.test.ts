import { describe, expect, it } from 'vitest';
import { appendAuditRecord } from '../../src/audit/append.js';
import { writerAlive } from '../../src/audit/lock.js';
import { queryAudit } from '../../src/audit/query.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { call, openLog, tempState } from './helpers.js';

describe('appendAuditRecord: a second process appends (secret set/delete)', () => {
  it('without a running gateway: takes the writer lock, appends, seals and releases', async () => {
    const { state, dir } = tempState();
    const r = await appendAuditRecord(state, { event: 'secret.set', name: 'GITHUB_TOKEN', via: 'cli' });
    expect(r.seq).toBe(1);
    expect(await writerAlive(dir)).toMatchObject({ alive: false });
    const r2 = await appendAuditRecord(state, { event: 'secret.delete', name: 'GITHUB_TOKEN', via: 'cli' });
    expect(r2.seq).toBeGreaterThan(r.seq);
    expect((await verifyAudit(dir)).problems).toEqual([]);
  });

  it('while the gateway holds the log: goes through its append socket into the same chain', async () => {
    const { state, dir } = tempState();
    const gw = await openLog(dir, { listen: true });
    const load = Promise.all(Array.from({ length: 200 }, (_, i) => gw.append(call(i))));
    const cli = await Promise.all([
      appendAuditRecord(state, { event: 'secret.set', name: 'SLACK_TOKEN' }),
      appendAuditRecord(state, { event: 'secret.delete', name: 'JIRA_TOKEN' }),
    ]);
    await load;
    await gw.close();
    const recs = (await queryAudit(dir, { grep: 'secret.' }, { order: 'asc' })).records;
    expect(recs.map((r) => [r.event, r.name])).toEqual(
      expect.arrayContaining([
        ['secret.set', 'SLACK_TOKEN'],
        ['secret.delete', 'JIRA_TOKEN'],
      ]),
    );
    expect(recs.map((r) => r.seq).sort()).toEqual(cli.map((c) => c.seq).sort());
    expect((await verifyAudit(dir)).problems).toEqual([]);
  });

  it('the socket refuses writer-reserved events', async () => {
    const { state, dir } = tempState();
    const gw = await openLog(dir, { listen: true });
    await expect(appendAuditRecord(state, { event: 'audit.checkpoint' })).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    await gw.close();
  });
});
