/**
 * Edges of the durable audit writer that mutation testing (npm run
 * test:mutation) found unguarded: what a failed write does to the appends
 * waiting behind it, records of executed calls kept while the log is down,
 * refusals (closed, failed, below the headroom), where the chain goes on
 * after a restart over a damaged file, and the lock on a failed open. Waits
 * are for the writer's own log lines (events), never for a fixed time.
 */
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { listAuditFiles } from '../../src/audit/files.js';
import type { AuditRecord } from '../../src/audit/types.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { nodeAuditFs, type AuditFs } from '../../src/audit/writer.js';
import { call, countingFs, lines, openLog, tempState } from './helpers.js';

/** A logger whose lines can be awaited: `next(re)` resolves on the next line whose msg matches. */
function watchedLogger() {
  const waiting: { re: RegExp; resolve: (line: Record<string, unknown>) => void }[] = [];
  const logger = pino({ level: 'debug' }, {
    write(text: string) {
      const line = JSON.parse(text) as Record<string, unknown>;
      for (const w of waiting.splice(0)) (w.re.test(String(line.msg)) ? w.resolve(line) : waiting.push(w));
    },
  });
  const next = (re: RegExp) => new Promise<Record<string, unknown>>((resolve) => waiting.push({ re, resolve }));
  return { logger, next };
}

/** The real fs, except that a write can be held and then failed with an errno. */
function holdableFs() {
  let hold: { entered: () => void; result: Promise<void> } | undefined;
  const fs: AuditFs & { holdNextWrite(): { entered: Promise<void>; fail(code?: string): void } } = {
    ...nodeAuditFs,
    async write(fd, data) {
      const h = hold;
      hold = undefined;
      if (h) {
        h.entered();
        await h.result;
      }
      await nodeAuditFs.write(fd, data);
    },
    holdNextWrite() {
      let entered!: () => void;
      let fail!: (code?: string) => void;
      const enteredP = new Promise<void>((r) => (entered = r));
      const result = new Promise<void>((_, reject) => (fail = (code) => reject(code === undefined ? new Error('no errno') : Object.assign(new Error(`${code}: simulated`), { code }))));
      hold = { entered, result };
      return { entered: enteredP, fail };
    },
  };
  return fs;
}

const records = (dir: string) => lines(join(dir, 'audit.jsonl')).map((l) => JSON.parse(l) as AuditRecord);

describe('a write that fails', () => {
  it('refuses the failed batch and every append queued behind it, names the errno, and refuses new calls while failed', async () => {
    const { dir } = tempState();
    const fs = holdableFs();
    const log = await openLog(dir, { fs, retryMs: 60_000 });
    await log.append(call(0));
    const held = fs.holdNextWrite();
    const first = log.appendRecord(call(1));
    await held.entered;
    // Queued while the first batch is being written: a batch of their own.
    const queued = [log.appendRecord(call(2)), log.appendRecord(call(3))];
    held.fail('EIO');
    const results = await Promise.allSettled([first, ...queued]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toMatchObject({
        code: 'AUDIT_UNAVAILABLE',
        message: 'the audit log cannot be written (EIO: EIO: simulated); calls are refused until it can (retrying every 60 s)',
        details: { code: 'EIO', since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
      });
    }
    expect(log.failed).toBe('EIO: EIO: simulated');
    expect(() => log.assertWritable()).toThrow(/cannot be written \(EIO/);
    await expect(log.append(call(4))).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    expect(records(dir).map((r) => r.seq)).toEqual([1]);
    // No checkpoint over records that never landed.
    await log.checkpoint();
    expect(records(dir).map((r) => r.event)).toEqual(['tools/call']);
    await log.close();
  });

  it('recovers: the chain goes on from what is on disk, with an audit.recovered record naming the error, its time and the first refused seq', async () => {
    const { dir } = tempState();
    const fs = holdableFs();
    const { logger, next } = watchedLogger();
    const log = await openLog(dir, { fs, logger, retryMs: 20 });
    await log.append(call(0));
    const held = fs.holdNextWrite();
    const failed = log.appendRecord(call(1)).then(() => undefined, (e: unknown) => e as { details: { since: string } });
    await held.entered;
    const queued = log.append(call(2)).catch(() => undefined);
    const logged = next(/write failed/);
    const back = next(/log writable again/);
    held.fail('EACCES');
    const refusal = await failed;
    await queued;
    expect(await logged).toMatchObject({ level: 50, code: 'EACCES', err: 'EACCES: simulated', file: join(dir, 'audit.jsonl') });
    expect(await back).toMatchObject({ seq: 2, lateRecords: 0 });
    expect(log.failed).toBeUndefined();
    expect(() => log.assertWritable()).not.toThrow();
    await log.append(call(5));
    await log.close();
    const recs = records(dir);
    expect(recs[1]).toMatchObject({
      seq: 2,
      event: 'audit.recovered',
      reason: 'write-failed',
      error: { code: 'EACCES', message: 'EACCES: EACCES: simulated' },
      failedAt: refusal?.details.since,
      refusedFromSeq: 2,
    });
    expect(recs[1]).not.toHaveProperty('torn');
    // The refused records (seq 2 and 3 as they were numbered) never reach the file.
    expect(recs[2]).toMatchObject({ seq: 3, prev: recs[1]?.hash, args: { n: 5 } });
    expect(recs.filter((r) => r.event === 'tools/call').map((r) => (r.args as { n: number }).n)).toEqual([0, 5]);
    expect((await verifyAudit(dir)).problems).toEqual([]);
  });

  it('an error without an errno is reported as EIO', async () => {
    const { dir } = tempState();
    const fs = holdableFs();
    const log = await openLog(dir, { fs, retryMs: 60_000 });
    const held = fs.holdNextWrite();
    const refused = log.append(call(0)).then(() => undefined, (e: unknown) => e);
    await held.entered;
    held.fail();
    expect(await refused).toMatchObject({ message: expect.stringMatching(/^the audit log cannot be written \(EIO: no errno\)/), details: { code: 'EIO' } });
    await log.close();
  });
});

describe('records of calls that already ran (appendOutcome)', () => {
  it('while the log is down: the caller is refused, the record is kept and written after recovery, marked not delivered', async () => {
    const { dir } = tempState();
    const fs = holdableFs();
    const log = await openLog(dir, { fs, retryMs: 60_000 });
    const held = fs.holdNextWrite();
    const failing = log.append(call(0)).catch(() => undefined);
    await held.entered;
    held.fail('ENOSPC');
    await failing;
    const refused = await log.appendOutcome(call(1, { call: 'c-1' })).catch((e: unknown) => e as Error);
    expect(refused).toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    expect(log.lateRecords).toBe(1);
    // A closed or reserved-name outcome is never kept; this one is, until recovery.
    await expect(log.appendOutcome({ event: 'audit.forged' })).rejects.toThrow('an outcome record needs an ordinary "event" name');
    await expect(log.appendOutcome({ event: '' })).rejects.toThrow('an outcome record needs an ordinary "event" name');
    expect(log.lateRecords).toBe(1);
    await log.close();
    // close could not write it (still failed): it is not on disk, and nothing else is.
    expect(records(dir)).toEqual([]);

    const again = tempState();
    const fs2 = holdableFs();
    const w = watchedLogger();
    const log2 = await openLog(again.dir, { fs: fs2, logger: w.logger, retryMs: 20 });
    const held2 = fs2.holdNextWrite();
    const lost = log2.append(call(0)).catch(() => undefined);
    await held2.entered;
    held2.fail('ENOSPC');
    await lost;
    const back = w.next(/log writable again/);
    const outcome = await log2.appendOutcome(call(1, { call: 'c-1' })).then(() => undefined, (e: unknown) => e as Error);
    expect(await back).toMatchObject({ lateRecords: 1 });
    await log2.flush();
    expect(log2.lateRecords).toBe(0);
    await log2.close();
    const recs = records(again.dir);
    expect(recs.map((r) => r.event)).toEqual(['audit.recovered', 'tools/call', 'audit.checkpoint']);
    expect(recs[1]).toMatchObject({ call: 'c-1', delivered: false, late: { reason: outcome?.message } });
    expect(outcome).toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    expect((await verifyAudit(again.dir)).problems).toEqual([]);
  });

  it('on a working log an outcome is written at once; on a closed log it is refused and not kept', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    await log.appendOutcome(call(1, { call: 'c-1' }));
    await log.close();
    expect(records(dir)[0]).toMatchObject({ seq: 1, call: 'c-1' });
    expect(records(dir)[0]).not.toHaveProperty('delivered');
    await expect(log.appendOutcome(call(2))).rejects.toThrow('the audit log is closed; calls are refused');
    expect(log.lateRecords).toBe(0);
  });
});

describe('refusals', () => {
  it('a closed log refuses appends and new calls; closing twice is harmless', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    await log.close();
    await log.close();
    expect(() => log.assertWritable()).toThrow('the audit log is closed; calls are refused');
    await expect(log.append(call(1))).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE', message: 'the audit log is closed; calls are refused' });
  });

  it('events reserved for the writer and events without a name are refused with the reason', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    await expect(log.append({ event: 'audit.recovered' })).rejects.toThrow('"audit.recovered" records are written by the audit log itself');
    await expect(log.append({ event: 5 } as never)).rejects.toThrow('an audit event needs an "event" name');
    await expect(log.append({ event: 'auditx' })).resolves.toBeUndefined();
    await log.close();
    expect(records(dir).map((r) => r.event)).toEqual(['auditx', 'audit.checkpoint']);
  });

  it('a disk below the headroom at open: an audit.headroom record, and new calls refused with the numbers', async () => {
    const { dir } = tempState();
    const huge = 2 ** 50; // more than any test machine has free
    const log = await openLog(dir, { headroomBytes: huge, spaceCheckMs: 60_000 });
    expect(log.headroom).toMatchObject({ low: true, headroomBytes: huge });
    let refusal: unknown;
    try {
      log.assertWritable();
    } catch (e) {
      refusal = e;
    }
    expect(refusal).toMatchObject({
      code: 'AUDIT_UNAVAILABLE',
      message: expect.stringMatching(/^audit disk headroom below 1073741824 MiB on \/.*; free space \d+(\.\d+)? MiB: new calls are refused until space is freed there \(records of calls already forwarded are still written\)$/),
      details: { code: 'AUDIT_HEADROOM', headroomBytes: huge, freeBytes: log.headroom.freeBytes, filesystem: expect.stringMatching(/^\//) },
    });
    await log.append({ event: 'session.opened' });
    await log.close();
    const recs = records(dir);
    expect(recs[0]).toMatchObject({ seq: 1, event: 'audit.headroom', state: 'low', headroomBytes: huge, freeBytes: log.headroom.freeBytes });
    expect(recs[1]).toMatchObject({ seq: 2, event: 'session.opened' });
  });
});

describe('where the chain goes on after a restart', () => {
  it('a torn tail is moved aside without overwriting earlier torn files of the same seq', async () => {
    const { dir } = tempState();
    const file = join(dir, 'audit.jsonl');
    let log = await openLog(dir);
    await log.append(call(0));
    await log.close(); // seq 1 and its checkpoint, seq 2
    writeFileSync(`${file}.torn-3`, 'older');
    writeFileSync(`${file}.torn-3-2`, 'older still');
    writeFileSync(file, '{"v":1,"cut', { flag: 'a' });
    log = await openLog(dir);
    await log.close();
    expect(readFileSync(`${file}.torn-3`, 'utf8')).toBe('older');
    expect(readFileSync(`${file}.torn-3-2`, 'utf8')).toBe('older still');
    expect(readFileSync(`${file}.torn-3-3`, 'utf8')).toBe('{"v":1,"cut');
    expect(records(dir)[2]).toMatchObject({ seq: 3, event: 'audit.recovered', torn: { file: 'audit.jsonl', length: 11, movedTo: 'audit.jsonl.torn-3-3' } });
    expect((await verifyAudit(dir)).problems).toEqual([]);
  });

  it('a current file with no valid record at all: the chain goes on from the last record of the file before', async () => {
    const { dir } = tempState();
    let log = await openLog(dir, { maxFileBytes: 4096, checkpointEvery: 1_000_000 });
    for (let i = 0; i < 20; i++) await log.append(call(i));
    await log.close();
    const files = listAuditFiles(dir);
    expect(files.length).toBeGreaterThan(1);
    const rotated = files.at(-2)?.path as string;
    const last = JSON.parse(lines(rotated).at(-1) as string) as AuditRecord;
    // The whole current file is one cut line (a crash right after rotating).
    writeFileSync(join(dir, 'audit.jsonl'), '{"v":1,"cut');
    log = await openLog(dir, { maxFileBytes: 4096 });
    await log.close();
    const recs = records(dir);
    expect(recs[0]).toMatchObject({ seq: last.seq + 1, prev: last.hash, event: 'audit.recovered', torn: { offset: 0, length: 11, movedTo: `audit.jsonl.torn-${last.seq + 1}` } });
    expect(listAuditFiles(dir).at(-1)?.firstSeq).toBe(last.seq + 1);
    expect((await verifyAudit(dir)).problems).toEqual([]);
  });

  it('an open that fails after taking the lock releases it (the next open is not told another process holds it)', async () => {
    const { dir } = tempState();
    mkdirSync(join(dir, 'audit.jsonl'), { recursive: true });
    await expect(openLog(dir)).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE', message: expect.stringMatching(new RegExp(`^cannot open the audit log in ${dir}: .*EISDIR`)) });
    await expect(openLog(dir)).rejects.toMatchObject({ message: expect.stringContaining('EISDIR') });
    rmdirSync(join(dir, 'audit.jsonl'));
    const log = await openLog(dir);
    await log.append(call(0));
    await log.close();
    expect(records(dir).map((r) => r.seq)).toEqual([1, 2]);
  });
});

describe('the writer\'s own bookkeeping', () => {
  it('a log restarted with records in its current file names the file for its first seq when it rotates', async () => {
    const { dir } = tempState();
    let log = await openLog(dir, { maxFileBytes: 4096, checkpointEvery: 1_000_000 });
    await log.append(call(0));
    await log.close();
    log = await openLog(dir, { maxFileBytes: 4096, checkpointEvery: 1_000_000 });
    for (let i = 1; i < 20; i++) await log.append(call(i));
    await log.close();
    expect(listAuditFiles(dir)[0]?.name).toBe('audit.000000000001.jsonl');
    expect((await verifyAudit(dir)).problems).toEqual([]);
  });

  it('while the disk is below the headroom the file is not rotated (a new file would start without a reserve)', async () => {
    const { dir } = tempState();
    const log = await openLog(dir, { maxFileBytes: 2048, headroomBytes: 2 ** 50, spaceCheckMs: 60_000 });
    for (let i = 0; i < 20; i++) await log.append(call(i));
    await log.close();
    expect(listAuditFiles(dir).map((f) => f.name)).toEqual(['audit.jsonl']);
    expect(log.stats.rotations).toBe(0);
  });

  it('counts appends, batches and fsyncs as they happen', async () => {
    const { dir } = tempState();
    const fs = countingFs();
    const log = await openLog(dir, { fs, checkpointEvery: 1_000_000 });
    for (let i = 0; i < 3; i++) await log.append(call(i));
    expect(log.stats).toMatchObject({ appends: 3, batches: 3, fsyncs: 3 });
    expect(fs.fsyncs).toBe(3);
    await log.close();
  });

  it('an intent the running writer wrote is pending; after a restart it is unknown (that gateway stopped)', async () => {
    const { dir } = tempState();
    let log = await openLog(dir);
    await log.append({ event: 'tools/call.intent', call: 'c-1', agent: 'a', tool: 't' });
    expect((await verifyAudit(dir)).unfinished).toEqual([expect.objectContaining({ call: 'c-1', status: 'pending' })]);
    await log.close();
    log = await openLog(dir);
    await log.append({ event: 'tools/call.intent', call: 'c-2', agent: 'a', tool: 't' });
    expect((await verifyAudit(dir)).unfinished.map((u) => [u.call, u.status])).toEqual([
      ['c-1', 'unknown (gateway stopped)'],
      ['c-2', 'pending'],
    ]);
    await log.close();
  });
});

describe('edges mutation testing found after the size bound (issue #24)', () => {
  it('an outcome without a string event name is refused with AUDIT_UNAVAILABLE, before anything is kept', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    await expect(log.appendOutcome({ event: 5 } as never)).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE', message: 'an outcome record needs an ordinary "event" name' });
    await log.close();
  });

  it('a log that failed and was then closed keeps no outcome (nothing would ever write it)', async () => {
    const { dir } = tempState();
    const fs = countingFs();
    const log = await openLog(dir, { fs, retryMs: 60_000 });
    fs.failWith = 'EIO';
    await log.append(call(0)).catch(() => undefined);
    await log.close();
    await expect(log.appendOutcome(call(1, { call: 'c-1' }))).rejects.toThrow('the audit log is closed; calls are refused');
    expect(log.lateRecords).toBe(0);
  });

  it('an open that fails keeps the cause', async () => {
    const { dir } = tempState();
    mkdirSync(join(dir, 'audit.jsonl'), { recursive: true });
    const err = await openLog(dir).then(() => undefined, (e: unknown) => e as Error & { cause?: { code?: string } });
    expect(err?.cause).toMatchObject({ code: 'EISDIR' });
  });

  it('a current file that is only a cut line, with no file before it: the chain starts at seq 1', async () => {
    const { dir } = tempState();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'audit.jsonl'), '{"v":1,"cut');
    const log = await openLog(dir);
    await log.close();
    expect(records(dir)[0]).toMatchObject({ seq: 1, prev: '0'.repeat(64), event: 'audit.recovered', torn: { offset: 0, length: 11 } });
    expect((await verifyAudit(dir)).problems).toEqual([]);
  });

  it('flush waits for records still being written (and queued), not only for the queue', async () => {
    const { dir } = tempState();
    const log = await openLog(dir, { checkpointEvery: 1_000_000 });
    void log.append(call(0));
    await log.flush();
    expect(records(dir).map((r) => r.seq)).toEqual([1]);
    for (let i = 1; i < 4; i++) void log.append(call(i));
    await log.flush();
    expect(records(dir).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    await log.close();
  });

  it('a checkpoint comes after every N records of events; checkpoint records do not count', async () => {
    const { dir } = tempState();
    const log = await openLog(dir, { checkpointEvery: 3 });
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 3; i++) await log.append(call(i));
      await log.checkpoint();
    }
    await log.flush();
    const cps = records(dir).filter((r) => r.event === 'audit.checkpoint').map((r) => (r.checkpoint as { seq: number }).seq);
    expect(cps).toEqual([3, 7]);
    await log.close();
  });

  it('rotation: never of an empty file (a first record bigger than the limit stays in audit.jsonl), and not when a batch fills the file exactly', async () => {
    const { dir } = tempState();
    const big = await openLog(dir, { maxFileBytes: 100, checkpointEvery: 1_000_000 });
    await big.append(call(0));
    expect(listAuditFiles(dir).map((f) => f.name)).toEqual(['audit.jsonl']);
    await big.close();

    const probe = tempState();
    let log = await openLog(probe.dir, { checkpointEvery: 1_000_000 });
    await log.append(call(0, { args: {} }));
    await log.close();
    // The first line alone (close adds a checkpoint); seq 1 and 2 lines have the same length.
    const size = Buffer.byteLength(`${lines(join(probe.dir, 'audit.jsonl'))[0]}\n`);
    const exact = tempState();
    log = await openLog(exact.dir, { maxFileBytes: 2 * size, checkpointEvery: 1_000_000 });
    await log.append(call(0, { args: {} }));
    await log.append(call(0, { args: {} }));
    expect(readFileSync(join(exact.dir, 'audit.jsonl')).length).toBe(2 * size);
    expect(listAuditFiles(exact.dir).map((f) => f.name)).toEqual(['audit.jsonl']);
    await log.close();
  });
});

describe('what the writer logs when the disk falls below the headroom', () => {
  it('an error line with the free space, the headroom and the filesystem', async () => {
    const { dir } = tempState();
    const { logger, next } = watchedLogger();
    const huge = 2 ** 50;
    const low = next(/^audit: disk headroom low; refusing new calls$/);
    const log = await openLog(dir, { logger, headroomBytes: huge, spaceCheckMs: 60_000 });
    expect(await low).toMatchObject({ level: 50, freeBytes: log.headroom.freeBytes, headroomBytes: huge, filesystem: expect.stringMatching(/^\//) });
    await log.close();
  });
});

describe('flush and a write in flight', () => {
  it('flush does not resolve while a batch is still being written (nothing queued behind it)', async () => {
    const { dir } = tempState();
    let release!: () => void;
    let entered!: () => void;
    const inWrite = new Promise<void>((r) => (entered = r));
    const gate = new Promise<void>((r) => (release = r));
    let hold = true;
    const fs: AuditFs = {
      ...nodeAuditFs,
      async write(fd, data) {
        if (hold) {
          hold = false;
          entered();
          await gate;
        }
        await nodeAuditFs.write(fd, data);
      },
    };
    const log = await openLog(dir, { fs, checkpointEvery: 1_000_000 });
    void log.append(call(0));
    await inWrite;
    let flushed = false;
    const done = log.flush().then(() => (flushed = true));
    await new Promise((r) => setImmediate(r));
    expect(flushed).toBe(false);
    release();
    await done;
    expect(records(dir).map((r) => r.seq)).toEqual([1]);
    await log.close();
  });
});
