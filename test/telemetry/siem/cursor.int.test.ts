/**
 * The shipper's cursor: resumable across restarts and log rotation (keyed
 * on the record's seq and hash, the byte offset only a shortcut that is
 * checked), written atomically, never trusted blindly. A real audit log
 * (AuditLog) and a sink in memory.
 */
import { existsSync, readdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listAuditFiles } from '../../../src/audit/files.js';
import { AuditLog } from '../../../src/audit/writer.js';
import { pino } from 'pino';
import { SinkSchema } from '../../../src/telemetry/siem/config.js';
import { cursorPath, ensureSiemDir, readCursor, writeCursor } from '../../../src/telemetry/siem/cursor.js';
import type { Encoded } from '../../../src/telemetry/siem/encode.js';
import { Shipper } from '../../../src/telemetry/siem/shipper.js';
import { SinkError, type Sink } from '../../../src/telemetry/siem/sinks/sink.js';
import { tempDir, until } from '../../helpers/gateway.js';

class MemorySink implements Sink {
  seqs: number[] = [];
  truncated: number[] = [];
  refuse = new Set<number>();
  refuseCut = false;
  async send(batch: readonly Encoded[]): Promise<void> {
    const bad = batch.find((e) => this.refuse.has(e.seq) && (e.truncated === undefined || this.refuseCut));
    if (bad) throw new SinkError('rejected', `refused ${bad.seq}`);
    for (const e of batch) {
      this.seqs.push(e.seq);
      if (e.truncated) this.truncated.push(e.seq);
    }
  }
  async close(): Promise<void> {}
}

let state: string;
let log: AuditLog | undefined;
const shippers: Shipper[] = [];
afterEach(async () => {
  for (const s of shippers.splice(0)) await s.stop(0);
  await log?.close();
  log = undefined;
});

async function openLog(maxFileBytes = 2_000): Promise<AuditLog> {
  log = await AuditLog.open({ dir: join(state, 'audit'), maxFileBytes, headroomBytes: 0, checkpointEvery: 1_000_000 });
  return log;
}

async function write(n: number, from = 0): Promise<void> {
  for (let i = from; i < from + n; i++) await (log as AuditLog).append({ event: 'test.load', agent: 'a', n: i, pad: 'p'.repeat(100) });
}

/** What the shippers logged (JSON lines). */
let logged: string[] = [];
const logger = pino({ level: 'debug' }, { write: (l: string) => void logged.push(l) });

function ship(sink: Sink, extra: Record<string, unknown> = {}): Shipper {
  const config = SinkSchema.parse({ name: 'mem', kind: 'webhook', url: 'https://siem.example/in', poll: '10ms', retry: { initial: '5ms', max: '20ms' }, batchRecords: 7, ...extra });
  ensureSiemDir(state);
  const s = new Shipper({ config, sink, auditDir: join(state, 'audit'), stateDir: state, productVersion: 't', logger, head: () => log?.seq ?? 0 });
  shippers.push(s);
  s.start();
  return s;
}

const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('SIEM cursor', () => {
  it('survives rotation: a shipper stopped and started again across rotations resumes after its last record, none lost or repeated', async () => {
    state = tempDir();
    await openLog();
    await write(30);
    const sink = new MemorySink();
    let s = ship(sink);
    await until(() => sink.seqs.length === 30, 'the first 30');
    await s.stop(0);
    shippers.splice(0);
    const before = listAuditFiles(join(state, 'audit')).length;
    await write(80, 30);
    expect(listAuditFiles(join(state, 'audit')).length).toBeGreaterThan(before + 3); // rotated meanwhile
    s = ship(sink);
    await until(() => sink.seqs.length === 110, 'all 110');
    expect(sink.seqs).toEqual(upTo(110));
    await until(() => s.stats().lastShippedSeq === 110, 'the cursor at 110');
    expect(s.stats()).toMatchObject({ backlog: 0, lastError: null });
  });

  it('a rotated file that starts with a checkpoint (whose nested "seq" comes first in the line) is read as the file it is', async () => {
    state = tempDir();
    log = await AuditLog.open({ dir: join(state, 'audit'), maxFileBytes: 1_200, headroomBytes: 0, checkpointEvery: 3 });
    await write(60);
    await log.checkpoint();
    const { readFirstLine } = await import('../../../src/audit/files.js');
    const firsts = listAuditFiles(join(state, 'audit')).map((f) => JSON.parse(readFirstLine(f.path) ?? '{}') as { event?: string });
    expect(firsts.some((r) => r.event === 'audit.checkpoint')).toBe(true); // the case under test exists
    const sink = new MemorySink();
    ship(sink);
    const last = log.seq;
    await until(() => sink.seqs.length === last, 'every record');
    expect(sink.seqs).toEqual(upTo(last));
  });

  it('a byte offset that no longer ends the record (the file was rewritten) is not trusted: the record is found by its seq', async () => {
    state = tempDir();
    await openLog(1 << 20);
    await write(20);
    const sink = new MemorySink();
    const s = ship(sink);
    await until(() => sink.seqs.length === 20, 'the first 20');
    await s.stop(0);
    shippers.splice(0);
    const c = readCursor(state, 'mem').pos!;
    await writeCursor(state, 'mem', { ...c, offset: c.offset - 37 });
    await write(5, 20);
    ship(sink);
    await until(() => sink.seqs.length === 25, 'the next 5');
    expect(sink.seqs).toEqual(upTo(25));
  });

  it('a different log at the cursor (the state directory was reset): shipped again from its start, and said so', async () => {
    state = tempDir();
    await openLog();
    await write(12);
    ensureSiemDir(state);
    await writeCursor(state, 'mem', { seq: 5, hash: 'f'.repeat(64), file: 1, offset: 0 });
    const sink = new MemorySink();
    const s = ship(sink);
    await until(() => sink.seqs.length === 12, 'the whole log');
    expect(sink.seqs).toEqual(upTo(12));
    expect(s.stats().lastError).toBeNull();
  });

  it('records deleted before they were shipped (retention) are a reported gap; shipping goes on from the first record kept', async () => {
    state = tempDir();
    await openLog();
    await write(60);
    const files = listAuditFiles(join(state, 'audit'));
    expect(files.length).toBeGreaterThan(3);
    ensureSiemDir(state);
    await writeCursor(state, 'mem', { seq: 2, hash: 'e'.repeat(64), file: 1, offset: 10 });
    for (const f of files.slice(0, 2)) rmSync(f.path);
    const kept = listAuditFiles(join(state, 'audit'))[0]?.firstSeq as number;
    const sink = new MemorySink();
    const s = ship(sink);
    logged = [];
    await until(() => sink.seqs.at(-1) === 60, 'the rest');
    expect(sink.seqs).toEqual(upTo(60).slice(kept - 1));
    expect(logged.join('')).toContain(`records 3..${kept - 1} were deleted (retention) before they were shipped`);
    await until(() => s.stats().lastShippedSeq === 60, 'the cursor at 60');
  });

  it('is written atomically (no temporary file left behind) and a symlink put in its place is not followed', async () => {
    state = tempDir();
    ensureSiemDir(state);
    await writeCursor(state, 'mem', { seq: 3, hash: 'a'.repeat(64), file: 1, offset: 99 });
    expect(readdirSync(join(state, 'siem'))).toEqual(['mem.cursor']);
    expect(readCursor(state, 'mem')).toEqual({ pos: { seq: 3, hash: 'a'.repeat(64), file: 1, offset: 99 } });
    const target = join(tempDir(), 'elsewhere');
    writeFileSync(target, JSON.stringify({ v: 1, seq: 1_000_000, hash: 'b'.repeat(64), file: 1, offset: 0 }));
    unlinkSync(cursorPath(state, 'mem'));
    symlinkSync(target, cursorPath(state, 'mem'));
    expect(readCursor(state, 'mem')).toEqual({ pos: undefined, problem: `${cursorPath(state, 'mem')}: is a symlink` });
    // Saving replaces the link itself (rename), never writes through it.
    await writeCursor(state, 'mem', { seq: 4, hash: 'a'.repeat(64), file: 1, offset: 120 });
    expect(JSON.parse((await import('node:fs')).readFileSync(target, 'utf8'))).toMatchObject({ seq: 1_000_000 });
    expect(readCursor(state, 'mem').pos?.seq).toBe(4);
  });

  it('a malformed cursor is reported and the log shipped from its start (duplicates, never a loss)', async () => {
    state = tempDir();
    await openLog();
    await write(5);
    ensureSiemDir(state);
    writeFileSync(cursorPath(state, 'mem'), '{"v":1,"seq":"3"}', { mode: 0o600 });
    const sink = new MemorySink();
    logged = [];
    ship(sink);
    await until(() => sink.seqs.length === 5, 'the log');
    expect(sink.seqs).toEqual(upTo(5));
    expect(logged.join('')).toMatch(/"problem":".*mem\.cursor: malformed".*the cursor cannot be used; shipping from the start of the log/);
  });

  it('a record the sink refuses whole is found (the batch split) and sent cut down; one it refuses even cut stops shipping there, loudly, and is never skipped', async () => {
    state = tempDir();
    await openLog(1 << 20);
    await write(20);
    const sink = new MemorySink();
    sink.refuse.add(9);
    const s = ship(sink);
    await until(() => sink.seqs.length === 20, 'all, one cut');
    expect(sink.seqs).toEqual(upTo(20));
    expect(sink.truncated).toEqual([9]);
    expect(s.stats().truncated).toBe(1);

    sink.refuse.add(24);
    sink.refuseCut = true;
    await write(10, 20);
    await until(() => s.stats().failures >= 3, 'refusals');
    expect(sink.seqs).toEqual(upTo(23));
    // The cursor stays before the refused record (where exactly depends on how the records were batched).
    expect(s.stats().lastShippedSeq).toBeLessThan(24);
    expect(readCursor(state, 'mem').pos?.seq).toBeLessThan(24);
    expect(s.stats().state).toBe('retrying');
    expect(s.stats().lastError).toBe('refused 24');
    expect(s.stats().backlog).toBeGreaterThan(5);
    expect(existsSync(cursorPath(state, 'mem'))).toBe(true);
  });

  it("start: end skips the history a new sink would otherwise send, from the log's end on", async () => {
    state = tempDir();
    await openLog();
    await write(15);
    const sink = new MemorySink();
    ship(sink, { start: 'end' });
    await until(() => readCursor(state, 'mem').pos?.seq === 15, 'a cursor at the end');
    await write(3, 15);
    await until(() => sink.seqs.length === 3, 'the new ones');
    expect(sink.seqs).toEqual([16, 17, 18]);
  });
});
