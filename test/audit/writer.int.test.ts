import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { listAuditFiles } from '../../src/audit/files.js';
import { queryAudit } from '../../src/audit/query.js';
import { AUDIT_EVENTS, type AuditRecord } from '../../src/audit/types.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { loadCheckpointKey, checkpointKeyPath } from '../../src/audit/checkpoint.js';
import { LAZY_WRITE_MS, nodeAuditFs, type AuditFs } from '../../src/audit/writer.js';
import { call, countingFs, lines, openLog, tempState } from './helpers.js';

async function pubkey(state: string) {
  return (await loadCheckpointKey(checkpointKeyPath(state))).publicKey;
}

describe('audit writer', () => {
  it('round-trips every event type with seq, time, event, agent, session, prev and hash', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    const events = AUDIT_EVENTS.filter((e) => !e.startsWith('audit.'));
    expect(events.length).toBeGreaterThan(10); // the list under test is not empty
    for (const [i, event] of events.entries()) await log.append({ event, agent: `a${i}`, session: `s${i}`, detail: { i, name: event } });
    await log.close();
    const recs = lines(join(dir, 'audit.jsonl')).map((l) => JSON.parse(l) as AuditRecord);
    for (const [i, event] of events.entries()) {
      expect(recs[i]).toMatchObject({ v: 1, seq: i + 1, event, agent: `a${i}`, session: `s${i}`, detail: { i, name: event } });
      expect(recs[i]?.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(recs[i]?.prev).toBe(i === 0 ? '0'.repeat(64) : recs[i - 1]?.hash);
    }
    // The close seals the log with a checkpoint.
    expect(recs.at(-1)?.event).toBe('audit.checkpoint');
    const report = await verifyAudit(dir, { publicKey: await pubkey(dirname(dir)) });
    expect(report.problems).toEqual([]);
    expect(report.records).toBe(events.length + 1);
  });

  it('refuses events reserved for the writer and events without a name', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    await expect(log.append({ event: 'audit.checkpoint' })).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    await expect(log.append({ event: '' })).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    await log.close();
  });

  it('writer fields win over same-named event fields (a caller cannot forge seq or prev)', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    await log.append({ event: 'x', seq: 99, prev: 'f'.repeat(64), hash: 'bad', v: 7 });
    await log.close();
    expect(JSON.parse(lines(join(dir, 'audit.jsonl'))[0] ?? '')).toMatchObject({ v: 1, seq: 1, prev: '0'.repeat(64) });
    expect((await verifyAudit(dir)).ok).toBe(true);
  });

  it('continues the chain after a restart (seq + 1, prev = last hash)', async () => {
    const { dir } = tempState();
    let log = await openLog(dir);
    for (let i = 0; i < 10; i++) await log.append(call(i));
    await log.close();
    const before = lines(join(dir, 'audit.jsonl')).map((l) => JSON.parse(l) as AuditRecord);
    log = await openLog(dir);
    await log.append(call(10));
    await log.close();
    const after = lines(join(dir, 'audit.jsonl')).map((l) => JSON.parse(l) as AuditRecord);
    const next = after[before.length] as AuditRecord;
    expect(next.seq).toBe((before.at(-1) as AuditRecord).seq + 1);
    expect(next.prev).toBe((before.at(-1) as AuditRecord).hash);
    expect((await verifyAudit(dir, { publicKey: await pubkey(dirname(dir)) })).ok).toBe(true);
  });

  it('a torn last line is moved aside, reported in an audit.recovered record, and the chain continues', async () => {
    const { dir } = tempState();
    let log = await openLog(dir);
    for (let i = 0; i < 5; i++) await log.append(call(i));
    await log.close();
    const file = join(dir, 'audit.jsonl');
    const size = statSync(file).size;
    const torn = '{"v":1,"agent":"agent-0","args":{"n":5,"tit';
    appendFileSync(file, torn);
    expect((await verifyAudit(dir)).problems[0]).toMatchObject({ kind: 'truncated' });
    const lastSeq = (JSON.parse(lines(file).slice(0, -1).at(-1) ?? '') as AuditRecord).seq;

    log = await openLog(dir);
    await log.append(call(6));
    await log.close();
    const movedTo = `${file}.torn-${lastSeq + 1}`;
    expect(readFileSync(movedTo, 'utf8')).toBe(torn);
    const recs = lines(file).map((l) => JSON.parse(l) as AuditRecord);
    const recovered = recs.find((r) => r.event === 'audit.recovered');
    expect(recovered).toMatchObject({ seq: lastSeq + 1, reason: 'torn-last-line', torn: { file: 'audit.jsonl', offset: size, length: torn.length, movedTo: `audit.jsonl.torn-${lastSeq + 1}` } });
    const report = await verifyAudit(dir, { publicKey: await pubkey(dirname(dir)) });
    expect(report.problems).toEqual([]);
  });

  it('group commit: concurrent appends share fsyncs, and each resolves only after its fsync', async () => {
    const { dir } = tempState();
    const fs = countingFs({ syncDelayMs: 5 });
    const log = await openLog(dir, { fs, checkpointEvery: 1_000_000 });
    const n = 500;
    const syncedAtResolve: number[] = [];
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        log.append(call(i)).then(() => {
          syncedAtResolve.push(fs.fsyncs);
        }),
      ),
    );
    expect(fs.fsyncs).toBeGreaterThan(0);
    expect(fs.fsyncs).toBeLessThan(n / 10);
    // Every append resolved after at least one fsync that followed its write.
    expect(Math.min(...syncedAtResolve)).toBeGreaterThanOrEqual(1);
    expect(log.stats.batches).toBe(fs.fsyncs);
    await log.close();
    expect(lines(join(dir, 'audit.jsonl')).length).toBe(n + 1);
  });

  it('an append does not resolve before its batch is fsynced', async () => {
    const { dir } = tempState();
    let release: () => void = () => undefined;
    const fs = countingFs();
    const gate = new Promise<void>((r) => (release = r));
    const sync = fs.fdatasync.bind(fs);
    let syncing: () => void = () => undefined;
    const syncStarted = new Promise<void>((r) => (syncing = r));
    fs.fdatasync = async (fd: number) => {
      syncing();
      await gate;
      await sync(fd);
    };
    const log = await openLog(dir, { fs });
    let done = false;
    const p = log.append(call(1)).then(() => (done = true));
    // The event, not a sleep: the batch was written and its fsync began; one more turn of the
    // loop lets an append that (wrongly) resolved on the write run its callback.
    await syncStarted;
    await new Promise((r) => setImmediate(r));
    expect(fs.writes).toBe(1);
    expect(done).toBe(false);
    release();
    await p;
    expect(done).toBe(true);
    await log.close();
  });

  it('a lazy record (a call already answered) rides with the next write: one write, not two in a row', async () => {
    const { dir } = tempState();
    const fs = countingFs();
    const log = await openLog(dir, { fs });
    const writesBefore = fs.writes;
    let lazyDone = false;
    const lazy = log.appendOrQueue(call(1, { event: 'model.call' }), { lazy: true }).then((r) => ((lazyDone = true), r));
    await new Promise((r) => setImmediate(r));
    // Not started on its own: nothing waits for it.
    expect(fs.writes).toBe(writesBefore);
    expect(lazyDone).toBe(false);
    await log.append(call(2, { event: 'model.call.intent' }));
    expect(await lazy).toEqual({ state: 'written' });
    expect(fs.writes).toBe(writesBefore + 1);
    await log.close();
    const recs = lines(join(dir, 'audit.jsonl')).map((l) => JSON.parse(l) as AuditRecord);
    expect(recs.slice(0, 2).map((r) => r.event)).toEqual(['model.call', 'model.call.intent']);
  });

  it('a lazy record alone is written within LAZY_WRITE_MS; flush and close write it at once', async () => {
    const { dir } = tempState();
    const fs = countingFs();
    const log = await openLog(dir, { fs });
    const t0 = performance.now();
    expect(await log.appendOrQueue(call(1), { lazy: true })).toEqual({ state: 'written' });
    // Its own timer wrote it (no other record came): held at least LAZY_WRITE_MS, not forever.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(LAZY_WRITE_MS - 1);
    expect(lines(join(dir, 'audit.jsonl'))).toHaveLength(1);

    const second = log.appendOrQueue(call(2), { lazy: true });
    await log.flush();
    expect(lines(join(dir, 'audit.jsonl'))).toHaveLength(2);
    await second;
    void log.appendOrQueue(call(3), { lazy: true });
    await log.close();
    const recs = lines(join(dir, 'audit.jsonl')).map((l) => JSON.parse(l) as AuditRecord);
    expect(recs.map((r) => r.event)).toEqual(['tools/call', 'tools/call', 'tools/call', 'audit.checkpoint']);
  });

  it('a record appended while the log closes (lazy or not) is written or refused, never left waiting: a shutdown does not drop a finished call silently', async () => {
    const ticks = async (n: number) => {
      for (let i = 0; i < n; i++) await Promise.resolve();
    };
    const hung: string[] = [];
    // The record comes N microtasks after close()'s final checkpoint is written: at some N it falls in the gap
    // between close()'s flush and the log refusing appends, where a lazy record used to wait forever.
    for (const lazy of [true, false]) {
      for (let depth = 0; depth < 25; depth++) {
        const { dir } = tempState();
        let armed = false;
        let settled = 'PENDING';
        let log: Awaited<ReturnType<typeof openLog>> | undefined;
        const fs: AuditFs = {
          ...nodeAuditFs,
          async write(fd, data) {
            await nodeAuditFs.write(fd, data);
            if (!armed || !data.includes('audit.checkpoint')) return;
            armed = false;
            void ticks(depth).then(() => log?.appendOrQueue(call(1, { event: 'model.call' }), { lazy }).then((r) => (settled = r.state)));
          },
        };
        log = await openLog(dir, { fs });
        await log.append(call(0));
        armed = true;
        await log.close();
        await new Promise((r) => setTimeout(r, LAZY_WRITE_MS * 3));
        if (settled === 'PENDING') hung.push(`${lazy ? 'lazy' : 'urgent'}@${depth}`);
        const written = lines(join(dir, 'audit.jsonl')).some((l) => l.includes('"model.call"'));
        expect(written).toBe(settled === 'written');
      }
    }
    expect(hung).toEqual([]);
  });

  it('a lazy record kept through a log failure is written after recovery marked delivered: true (its call was over), not as a withheld result', async () => {
    const { dir } = tempState();
    const fs = countingFs();
    const log = await openLog(dir, { fs, retryMs: 50 });
    await log.append(call(0));
    fs.failWith = 'EIO';
    // The failing write: the log fails, the lazy record waiting in the batch is refused and kept.
    const failing = log.append(call(1)).catch(() => 'refused');
    const lazy = log.appendOrQueue(call(2, { event: 'model.call' }), { lazy: true });
    expect(await failing).toBe('refused');
    expect((await lazy).state).toBe('queued');
    fs.failWith = undefined;
    await vi.waitFor(() => expect(lines(join(dir, 'audit.jsonl')).some((l) => l.includes('"model.call"'))).toBe(true), { timeout: 5000 });
    await log.close();
    const rec = lines(join(dir, 'audit.jsonl'))
      .map((l) => JSON.parse(l) as AuditRecord & { delivered?: boolean; late?: { reason: string } })
      .find((r) => r.event === 'model.call');
    expect(rec?.delivered).toBe(true);
    expect(rec?.late?.reason).toMatch(/EIO/);
  });

  it('writes a signed checkpoint every N records and every T ms', async () => {
    const { dir } = tempState();
    const log = await openLog(dir, { checkpointEvery: 10 });
    for (let i = 0; i < 35; i++) await log.append(call(i));
    // Checkpoints are signed off the hot path: wait for the third (the hang guard is the test timeout).
    while (log.stats.checkpoints < 3) await new Promise((r) => setTimeout(r, 10));
    await log.flush();
    const cps = lines(join(dir, 'audit.jsonl')).map((l) => JSON.parse(l) as AuditRecord).filter((r) => r.event === 'audit.checkpoint');
    expect(cps.length).toBe(3);
    expect(cps[0]).toMatchObject({ checkpoint: { seq: 10 } });
    expect(typeof cps[0]?.jws).toBe('string');
    await log.close();

    const t = tempState();
    const timed = await openLog(t.dir, { checkpointEvery: 1000, checkpointIntervalMs: 30 });
    await timed.append(call(1));
    // The interval seals the record (however late its timer fires on a loaded machine)...
    while (timed.stats.checkpoints < 1) await new Promise((r) => setTimeout(r, 10));
    // ...and then writes none while nothing is unsealed. Clock: a 30 ms interval started after the
    // log's, in the same loop, so each of its ticks comes after one of the log's (load delays both).
    await new Promise<void>((r) => {
      let ticks = 0;
      const witness = setInterval(() => ++ticks >= 5 && (clearInterval(witness), r()), 30);
    });
    await timed.flush();
    expect(timed.stats.checkpoints).toBe(1); // one per interval only while there are unsealed records
    await timed.close();
  });

  it('stores the checkpoint key 0600 under <state>/keys', async () => {
    const { state, dir } = tempState();
    const log = await openLog(dir);
    await log.close();
    expect(statSync(checkpointKeyPath(state)).mode & 0o777).toBe(0o600);
    expect(log.publicJwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
    expect(log.publicJwk).not.toHaveProperty('d');
  });

  it('only one writer at a time: a second open is refused while the first holds the lock', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    await expect(openLog(dir)).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE', message: expect.stringContaining('another process') });
    await log.close();
    const again = await openLog(dir);
    await again.close();
  });

  it('a writer.lock file left behind (a dead writer, or the bare pid of an older version) does not block the next writer: only the kernel lock counts', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    await log.close();
    const before = lines(join(dir, 'audit.jsonl')).length;
    for (const stale of ['999999999\n', JSON.stringify({ pid: 999999999, since: new Date(0).toISOString(), fromSeq: 1 })]) {
      writeFileSync(join(dir, 'writer.lock'), stale);
      const again = await openLog(dir);
      // The lock file now names this writer, and the append lands on the chain.
      expect(JSON.parse(readFileSync(join(dir, 'writer.lock'), 'utf8'))).toMatchObject({ pid: process.pid });
      await again.append({ ...call(1), stale });
      await again.close();
    }
    const recs = lines(join(dir, 'audit.jsonl')).map((l) => JSON.parse(l) as AuditRecord);
    expect(recs.filter((r) => typeof r.stale === 'string').map((r) => r.seq)).toEqual([before + 1, before + 3]);
    expect((await verifyAudit(dir)).problems).toEqual([]);
  });
});

describe('rotation and retention', () => {
  it('rotates by size; the chain continues across files and verify walks them all', async () => {
    const { state, dir } = tempState();
    const log = await openLog(dir, { maxFileBytes: 8 * 1024, checkpointEvery: 50 });
    for (let i = 0; i < 300; i++) await log.append(call(i));
    await log.close();
    const files = listAuditFiles(dir);
    expect(files.length).toBeGreaterThan(5);
    expect(log.stats.rotations).toBe(files.length - 1);
    for (const [i, f] of files.entries()) {
      const first = JSON.parse(lines(f.path)[0] ?? '') as AuditRecord;
      expect(first.seq).toBe(f.firstSeq);
      if (i > 0) {
        const prevLast = JSON.parse(lines((files[i - 1] as { path: string }).path).at(-1) ?? '') as AuditRecord;
        expect(first.prev).toBe(prevLast.hash);
        expect(first.seq).toBe(prevLast.seq + 1);
      }
      if (!f.current) expect(f.size).toBeLessThanOrEqual(8 * 1024);
    }
    const report = await verifyAudit(dir, { publicKey: await pubkey(state) });
    expect(report.problems).toEqual([]);
    expect(report.records).toBe(300 + report.checkpoints);
    // Query reads rotated files too, newest first.
    const page = await queryAudit(dir, { event: 'tools/call' }, { limit: 1000 });
    expect(page.records.length).toBe(300);
    expect(page.records[0]?.seq).toBeGreaterThan(page.records[299]?.seq ?? Infinity);
  });

  it('retention by count deletes the oldest files after an audit.retention record; verify accepts the new start', async () => {
    const { state, dir } = tempState();
    const log = await openLog(dir, { maxFileBytes: 8 * 1024, retainFiles: 2 });
    for (let i = 0; i < 300; i++) await log.append(call(i));
    await log.close();
    const files = listAuditFiles(dir);
    expect(files.filter((f) => !f.current).length).toBe(2);
    const recs = files.flatMap((f) => lines(f.path).map((l) => JSON.parse(l) as AuditRecord));
    const retention = recs.filter((r) => r.event === 'audit.retention');
    expect(retention.length).toBeGreaterThan(0);
    const first = recs[0] as AuditRecord;
    expect(first.seq).toBeGreaterThan(1);
    expect(retention.some((r) => r.keptFromSeq === first.seq && r.keptFromPrev === first.prev)).toBe(true);
    const report = await verifyAudit(dir, { publicKey: await pubkey(state) });
    expect(report.problems).toEqual([]);
    expect(report.retainedFrom).toEqual({ seq: first.seq, prev: first.prev });
  });

  it('retention by age deletes rotated files whose last write is older than the limit', async () => {
    const { dir } = tempState();
    let log = await openLog(dir, { maxFileBytes: 8 * 1024 });
    for (let i = 0; i < 100; i++) await log.append(call(i));
    await log.close();
    const old = listAuditFiles(dir).filter((f) => !f.current);
    expect(old.length).toBeGreaterThan(1);
    const tenDaysAgo = new Date(Date.now() - 10 * 86_400_000);
    for (const f of old) utimesSync(f.path, tenDaysAgo, tenDaysAgo);
    log = await openLog(dir, { maxFileBytes: 8 * 1024, retainDays: 7 });
    await log.flush();
    await log.close();
    for (const f of old) expect(existsSync(f.path)).toBe(false);
    // What is left was written now (the retention record itself may have rotated the file).
    for (const f of listAuditFiles(dir)) expect(statSync(f.path).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
    expect(readdirSync(dir).some((n) => n.endsWith('.jsonl'))).toBe(true);
    const report = await verifyAudit(dir);
    expect(report.problems).toEqual([]);
  });

  it('without a retention record, a log that starts after seq 1 is reported (removed files)', async () => {
    const { dir } = tempState();
    const log = await openLog(dir, { maxFileBytes: 8 * 1024 });
    for (let i = 0; i < 100; i++) await log.append(call(i));
    await log.close();
    const first = listAuditFiles(dir)[0];
    await import('node:fs').then((fs) => fs.unlinkSync(first?.path ?? ''));
    const report = await verifyAudit(dir);
    expect(report.ok).toBe(false);
    expect(report.problems[0]).toMatchObject({ kind: 'start' });
  });
});

function dirname(p: string): string {
  return p.replace(/\/[^/]+$/, '');
}
