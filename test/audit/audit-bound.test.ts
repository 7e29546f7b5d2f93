/**
 * A hostile upstream can't break the audit (issue #24): every record has a
 * size bound, a record that can't be written as it came is shrunk or
 * replaced by a minimal record of the call (never dropped, never retried
 * forever), and the late-audit queue is bounded and drained a chunk per turn
 * of the event loop. Waits are for the writer's own log lines, not for time.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MAX_RECORD_BYTES, MINIMAL_FIELDS, boundedEvent, boundedLine, jsonSizeAtLeast } from '../../src/audit/bound.js';
import type { AuditRecord } from '../../src/audit/types.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { LATE_DRAIN_CHUNK, MAX_LATE_RECORDS } from '../../src/audit/writer.js';
import { call, countingFs, openLog, tempState } from './helpers.js';

const rawLines = (dir: string) => readFileSync(join(dir, 'audit.jsonl'), 'utf8').split('\n').filter((l) => l !== '');
const records = (dir: string) => rawLines(dir).map((l) => JSON.parse(l) as AuditRecord);

/** A call's outcome record, as the pipeline writes it, with an upstream error message of `n` characters. */
const failedCall = (n: number, over: Record<string, unknown> = {}) =>
  call(1, { call: 'c-1', outcome: 'error', error: { code: 'UPSTREAM_ERROR', message: 'E'.repeat(n) }, ...over });

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

describe('the per-record bound', () => {
  it('is 64 KiB, exported for the docs and other rooms', () => {
    expect(MAX_RECORD_BYTES).toBe(65_536);
    expect(MINIMAL_FIELDS).toEqual(['event', 'call', 'agent', 'session', 'tool', 'connector', 'outcome']);
  });

  it('a record just within the bound is written as it came', async () => {
    const { dir } = tempState();
    const log = await openLog(dir, { checkpointEvery: 1_000_000 });
    const probe = rawLines((await log.append(failedCall(0)), dir))[0] as string;
    const room = MAX_RECORD_BYTES - Buffer.byteLength(probe) - 1;
    await log.append(failedCall(room));
    await log.close();
    const lines = rawLines(dir);
    expect(Buffer.byteLength(`${lines[1]}\n`)).toBe(MAX_RECORD_BYTES);
    expect(records(dir)[1]).not.toHaveProperty('bounded');
    expect((records(dir)[1]?.error as { message: string }).message).toHaveLength(room);
  });
});

describe('a hostile upstream\'s huge error message', () => {
  it('a 3 MB message: one record within the bound, the message cut with its full size noted, the chain intact', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    await log.append(failedCall(3_000_000));
    await log.close();
    const lines = rawLines(dir);
    expect(Buffer.byteLength(`${lines[0]}\n`)).toBeLessThanOrEqual(MAX_RECORD_BYTES);
    expect(records(dir)[0]).toMatchObject({
      seq: 1,
      event: 'tools/call',
      call: 'c-1',
      agent: 'agent-1',
      outcome: 'error',
      error: { code: 'UPSTREAM_ERROR', message: `${'E'.repeat(1024)}…[truncated, 3000000 bytes]` },
      bounded: { reason: 'over the 65536-byte record bound', bytes: expect.any(Number) },
    });
    expect((records(dir)[0]?.bounded as { bytes: number }).bytes).toBeGreaterThan(3_000_000);
    expect((await verifyAudit(dir)).problems).toEqual([]);
  });

  it('a message that fits in characters but not in bytes (JSON escapes) is measured as written, then cut', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    // 20,000 control characters: 20 kB as a string, 120 kB as JSON (\u0001 each).
    await log.append(failedCall(0, { error: { code: 'UPSTREAM_ERROR', message: '\u0001'.repeat(20_000) } }));
    await log.close();
    const rec = records(dir)[0] as AuditRecord & { bounded: { reason: string; bytes: number } };
    expect(rec.bounded.reason).toBe('over the 65536-byte record bound');
    expect(rec.bounded.bytes).toBeGreaterThan(MAX_RECORD_BYTES);
    expect((rec.error as { message: string }).message).toMatch(/…\[truncated, 20000 bytes\]$/);
  });

  it('many long strings that still do not fit once cut: a minimal record of the call, saying why and how big', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    const wide = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, 'x'.repeat(5_000)]));
    await log.append(failedCall(10, { session: 's-1', result: wide, extra: 'dropped' }));
    await log.close();
    const rec = records(dir)[0] as AuditRecord;
    const { v, seq, time, prev, hash, ...kept } = rec;
    expect({ v, seq, prev }).toEqual({ v: 1, seq: 1, prev: '0'.repeat(64) });
    expect(typeof time === 'string' && typeof hash === 'string').toBe(true);
    expect(kept).toEqual({
      event: 'tools/call',
      call: 'c-1',
      agent: 'agent-1',
      session: 's-1',
      tool: 'github__create_issue',
      connector: 'github',
      outcome: 'error',
      bounded: { reason: 'over the 65536-byte record bound', bytes: expect.any(Number), minimal: true },
    });
    expect(rec.bounded).toMatchObject({ bytes: expect.any(Number) });
    expect((rec.bounded as { bytes: number }).bytes).toBeGreaterThan(500_000);
    expect((await verifyAudit(dir)).problems).toEqual([]);
  });
});

describe('a record far over the bound is measured, not serialized', () => {
  it('its size is the estimate (a 512 MB message is never formatted whole): 100,000 control characters note ~100 kB, not the 600 kB of their JSON', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    await log.append(failedCall(0, { error: { code: 'UPSTREAM_ERROR', message: '\u0001'.repeat(100_000) } }));
    await log.close();
    const bytes = (records(dir)[0]?.bounded as { bytes: number }).bytes;
    expect(bytes).toBeGreaterThan(100_000);
    expect(bytes).toBeLessThan(101_000);
  });
});

describe('a record that cannot be serialized at all', () => {
  it('is replaced by a minimal record of the call naming the error (the call is not left unrecorded)', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    const hostile = { toJSON: () => { throw new Error('boom'); } };
    await log.appendOutcome(failedCall(10, { result: hostile, agent: 'a'.repeat(2_000) }));
    await log.append(call(2));
    await log.close();
    const [rec, next] = records(dir);
    expect(rec).toMatchObject({ seq: 1, event: 'tools/call', call: 'c-1', outcome: 'error', connector: 'github', bounded: { reason: 'could not be serialized: boom', minimal: true } });
    expect(rec).not.toHaveProperty('result');
    expect(rec?.agent).toBe(`${'a'.repeat(1024)}…[truncated, 2000 bytes]`);
    expect(next).toMatchObject({ seq: 2, prev: rec?.hash });
    expect((await verifyAudit(dir)).problems).toEqual([]);
  });

  it('a value nested 5,000 deep in a record does not throw: the record is written, cut at the serializer\'s depth', async () => {
    const { dir } = tempState();
    const log = await openLog(dir);
    let deep: unknown = 'bottom';
    for (let i = 0; i < 5_000; i++) deep = { a: deep };
    await log.appendOutcome(failedCall(10, { result: deep }));
    await log.close();
    expect(records(dir)[0]).toMatchObject({ seq: 1, call: 'c-1' });
    expect(rawLines(dir)[0]).toContain('[nested too deep]');
  });
});

describe('the size estimate', () => {
  it('counts strings, numbers, keys and nesting, and stops once past the limit (a cyclic value ends)', () => {
    expect(jsonSizeAtLeast('abc', 100)).toBe(5);
    expect(jsonSizeAtLeast(12345, 100)).toBe(5);
    expect(jsonSizeAtLeast(null, 100)).toBe(4);
    expect(jsonSizeAtLeast(true, 100)).toBe(4);
    expect(jsonSizeAtLeast(10n, 100)).toBe(2);
    expect(jsonSizeAtLeast([], 100)).toBe(2);
    // {"ab":"c"}: 10 bytes; the estimate is 2 + 2 items + 4 + 3 = 11, at least what JSON has (no escapes counted).
    expect(jsonSizeAtLeast({ ab: 'c' }, 100)).toBe(11);
    expect(jsonSizeAtLeast(['ab', 'c'], 100)).toBe(11);
    // Nothing is written for undefined or a function (a key still counts).
    expect(jsonSizeAtLeast({ a: undefined, f: () => 1 }, 100)).toBe(2 + 4 + 3 + 3);
    expect(jsonSizeAtLeast(undefined, 100)).toBe(0);
    // Counting stops once past the limit, not at it: at 3, the array and both items are counted (4); at 4, one more string.
    expect(jsonSizeAtLeast(['ab', 'c'], 2)).toBe(3);
    expect(jsonSizeAtLeast(['ab', 'c'], 3)).toBe(4);
    expect(jsonSizeAtLeast(['ab', 'c'], 4)).toBe(7);
    expect(jsonSizeAtLeast(['x'.repeat(50), 'y'.repeat(50)], 1_000)).toBeGreaterThanOrEqual(105);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    cyclic.other = cyclic;
    const n = jsonSizeAtLeast(cyclic, 10_000);
    expect(n).toBeGreaterThan(10_000);
    expect(n).toBeLessThan(10_100);
  });

  it('boundedEvent keeps a small event itself and shrinks a big one, noting its size', () => {
    const small = failedCall(10);
    expect(boundedEvent(small)).toBe(small);
    // {"m":"x…"}: 2 + 2 items + 3 + (n + 2): exactly the bound is kept, one more is not.
    const at = { m: 'x'.repeat(MAX_RECORD_BYTES - 9) };
    expect(jsonSizeAtLeast(at, MAX_RECORD_BYTES)).toBe(MAX_RECORD_BYTES);
    expect(boundedEvent(at)).toBe(at);
    expect(boundedEvent({ m: `${at.m}x` })).toMatchObject({ bounded: { bytes: MAX_RECORD_BYTES + 1 } });
    expect(boundedEvent(failedCall(100_000))).toMatchObject({
      call: 'c-1',
      error: { message: `${'E'.repeat(1024)}…[truncated, 100000 bytes]` },
      bounded: { reason: 'over the 65536-byte record bound', bytes: expect.any(Number) },
    });
  });
});

describe('boundedLine on its own (a format that writes plain JSON)', () => {
  const at = { seq: 7 };
  const plain = (f: Record<string, unknown>) => ({ line: `${JSON.stringify(f)}\n`, hash: 'h' });

  it('an estimate of exactly the bound is formatted and measured as written (the note has the written size)', () => {
    const e = { m: 'x'.repeat(MAX_RECORD_BYTES - 9) };
    const { line } = boundedLine(e, at, plain);
    const written = Buffer.byteLength(`${JSON.stringify({ ...e, ...at })}\n`);
    expect(JSON.parse(line)).toMatchObject({ seq: 7, m: `${'x'.repeat(1024)}…[truncated, ${MAX_RECORD_BYTES - 9} bytes]`, bounded: { reason: 'over the 65536-byte record bound', bytes: written } });
  });

  it('a shrunk line of exactly the bound is kept; one byte more and the record is minimal', () => {
    const e = { event: 'tools/call', call: 'c', m: 'x'.repeat(100_000) };
    const padded = (size: number) => (f: Record<string, unknown>) => {
      const text = JSON.stringify(f);
      const b = f.bounded as { minimal?: boolean } | undefined;
      return { line: b !== undefined && b.minimal !== true ? `${text}${' '.repeat(size - Buffer.byteLength(text) - 1)}\n` : `${text}\n`, hash: 'h' };
    };
    expect(JSON.parse(boundedLine(e, at, padded(MAX_RECORD_BYTES)).line)).toMatchObject({ m: expect.stringContaining('truncated'), bounded: { reason: 'over the 65536-byte record bound' } });
    const minimal = JSON.parse(boundedLine(e, at, padded(MAX_RECORD_BYTES + 1)).line) as Record<string, unknown>;
    expect(minimal).toEqual({ event: 'tools/call', call: 'c', seq: 7, bounded: { reason: 'over the 65536-byte record bound', bytes: expect.any(Number), minimal: true } });
  });

  it('a minimal record keeps only the string fields it names (anything else could be what failed)', () => {
    const throwing = (f: Record<string, unknown>) => {
      if (f.bounded === undefined || (f.bounded as { minimal?: boolean }).minimal !== true) throw new Error('no');
      return plain(f);
    };
    const e = { event: 'tools/call', call: 'c', agent: 7, session: { s: 1 }, tool: 't', connector: null, outcome: 'ok', other: 'x' };
    expect(JSON.parse(boundedLine(e, at, throwing).line)).toEqual({ event: 'tools/call', call: 'c', tool: 't', outcome: 'ok', seq: 7, bounded: { reason: 'could not be serialized: no', minimal: true } });
  });
});

describe('the late-audit queue (records of executed calls while the log is down)', () => {
  async function failedLog(retryMs: number) {
    const { dir } = tempState();
    const fs = countingFs();
    const w = watchedLogger();
    const log = await openLog(dir, { fs, logger: w.logger, retryMs, checkpointEvery: 1_000_000 });
    fs.failWith = 'EIO';
    await log.append(call(0)).catch(() => undefined);
    expect(log.failed).toBe('EIO: EIO: simulated');
    return { dir, fs, log, next: w.next };
  }

  it('keeps at most MAX_LATE_RECORDS and counts the rest; a close while still down reports them all', async () => {
    const { dir, log, next } = await failedLog(60_000);
    const over = 5;
    for (let i = 0; i < MAX_LATE_RECORDS + over; i++) await expect(log.appendOutcome(call(i, { call: `c-${i}` }))).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    expect(MAX_LATE_RECORDS).toBe(1000);
    expect(log.lateRecords).toBe(MAX_LATE_RECORDS);
    expect(log.lateLost).toBe(over);
    const unwritten = next(/could not be written before close/);
    await log.close();
    expect(await unwritten).toMatchObject({ level: 50, records: MAX_LATE_RECORDS + over, reason: 'EIO: EIO: simulated' });
    expect(records(dir)).toEqual([]);
  });

  it('on recovery: the kept records land, marked not delivered, and the overflow is one count in audit.recovered', async () => {
    const { dir, fs, log, next } = await failedLog(20);
    const over = 150;
    // The first retry must not come before the queue is full: hold recovery by failing writes until then.
    for (let i = 0; i < MAX_LATE_RECORDS + over; i++) {
      // The first call over the bound has no call id: counted, and no id listed for it.
      if (i === MAX_LATE_RECORDS) await log.appendOutcome({ event: 'tools/call', agent: 'x' }).catch(() => undefined);
      await log.appendOutcome(call(i, { call: `c-${i}` })).catch(() => undefined);
    }
    expect(log.lateRecords + log.lateLost).toBe(MAX_LATE_RECORDS + over + 1);
    const back = next(/log writable again/);
    fs.failWith = undefined;
    const logged = await back;
    await log.flush();
    await log.close();
    expect(log.lateRecords).toBe(0);
    expect(log.lateLost).toBe(0);
    const recs = records(dir);
    const recovered = recs.find((r) => r.event === 'audit.recovered');
    // Writes fail until the loop is done, so no recovery comes in between: the first 1,000 are kept, the rest counted.
    expect(logged.lateLost).toBe(over + 1);
    const lostIds = Array.from({ length: 100 }, (_, i) => `c-${MAX_LATE_RECORDS + i}`);
    expect(recovered).toMatchObject({ lateLost: { records: over + 1, calls: lostIds } });
    const calls = recs.filter((r) => r.event === 'tools/call');
    expect(calls.map((r) => r.call)).toEqual(Array.from({ length: MAX_LATE_RECORDS }, (_, i) => `c-${i}`));
    expect(calls.every((r) => r.delivered === false)).toBe(true);
    expect((await verifyAudit(dir)).problems).toEqual([]);
  });

  it('draining after a recovery lets other work run between chunks (it does not enqueue the whole queue in one turn)', async () => {
    const { dir, fs, log, next } = await failedLog(20);
    for (let i = 0; i < 200; i++) await log.appendOutcome(call(i, { call: `c-${i}` })).catch(() => undefined);
    let seqWhenOtherWorkRan = -1;
    const back = next(/log writable again/).then((line) => {
      setImmediate(() => (seqWhenOtherWorkRan = log.seq));
      return line;
    });
    fs.failWith = undefined;
    const r = await back;
    await log.flush();
    await log.close();
    expect(records(dir).find((x) => x.event === 'audit.recovered')).not.toHaveProperty('lateLost');
    expect(seqWhenOtherWorkRan).toBeGreaterThan(0);
    expect(seqWhenOtherWorkRan).toBeLessThan((r.seq as number) + 200);
    expect(records(dir).filter((x) => x.event === 'tools/call')).toHaveLength(200);
    expect(LATE_DRAIN_CHUNK).toBeLessThan(200);
  });

  it('a huge record of an executed call kept while the log is down is kept bounded, and lands bounded', async () => {
    const { dir, fs, log, next } = await failedLog(20);
    await log.appendOutcome(failedCall(5_000_000)).catch(() => undefined);
    expect(log.lateRecords).toBe(1);
    const back = next(/log writable again/);
    fs.failWith = undefined;
    await back;
    await log.flush();
    await log.close();
    const rec = records(dir).find((r) => r.event === 'tools/call');
    expect(rec).toMatchObject({ call: 'c-1', delivered: false, error: { message: expect.stringMatching(/…\[truncated, 5000000 bytes\]$/) }, bounded: { reason: 'over the 65536-byte record bound' } });
  });

  it('a log that fails again while draining keeps the rest for the next recovery: none lost, no record enqueued while failed, the chain intact', async () => {
    const { dir, fs, log, next } = await failedLog(20);
    for (let i = 0; i < 100; i++) await log.appendOutcome(call(i, { call: `c-${i}` })).catch(() => undefined);
    // Right when the log is back (before the drain starts), writes fail again: the first chunk is refused.
    const back = next(/log writable again/).then((line) => {
      fs.failWith = 'EIO';
      return line;
    });
    const failedAgain = next(/write failed/);
    fs.failWith = undefined;
    await back;
    await failedAgain;
    await log.flush();
    // What landed before the failure is on disk; the rest (the refused batch included) is kept, not enqueued while failed.
    const landed = records(dir).filter((r) => r.event === 'tools/call').length;
    expect(log.lateRecords).toBe(100 - landed);
    expect(log.lateRecords).toBeGreaterThan(LATE_DRAIN_CHUNK);
    const again = next(/log writable again/);
    fs.failWith = undefined;
    expect(await again).toMatchObject({ lateRecords: 100 - landed, lateLost: 0 });
    await log.flush();
    await log.close();
    const calls = records(dir).filter((r) => r.event === 'tools/call');
    expect(calls.map((r) => r.call).sort()).toEqual(Array.from({ length: 100 }, (_, i) => `c-${i}`).sort());
    expect((await verifyAudit(dir)).problems).toEqual([]);
  });

  it('losses are counted per outage: the second recovery counts only the calls lost in the second', async () => {
    const { dir, fs, log, next } = await failedLog(20);
    for (let i = 0; i < MAX_LATE_RECORDS + 2; i++) await log.appendOutcome(call(i, { call: `a-${i}` })).catch(() => undefined);
    let back = next(/log writable again/);
    fs.failWith = undefined;
    expect(await back).toMatchObject({ lateLost: 2 });
    await log.flush();
    expect(log.lateLost).toBe(0);
    fs.failWith = 'EIO';
    await log.append(call(0)).catch(() => undefined);
    for (let i = 0; i < MAX_LATE_RECORDS + 1; i++) await log.appendOutcome(call(i, { call: `b-${i}` })).catch(() => undefined);
    back = next(/log writable again/);
    fs.failWith = undefined;
    expect(await back).toMatchObject({ lateLost: 1 });
    await log.flush();
    await log.close();
    const recovered = records(dir).filter((r) => r.event === 'audit.recovered');
    expect(recovered.map((r) => r.lateLost)).toEqual([
      { records: 2, calls: [`a-${MAX_LATE_RECORDS}`, `a-${MAX_LATE_RECORDS + 1}`] },
      { records: 1, calls: [`b-${MAX_LATE_RECORDS}`] },
    ]);
  });
});
