/**
 * The shipper in front of a log someone changed on disk: an edited record,
 * a record removed, a record rewritten with a hash that matches its new
 * content (the chain then breaks at the next one), a line that is not a
 * record. The SIEM is where such a change must show: nothing is skipped
 * silently and nothing forged is shipped as if fine — the record concerned
 * (or, for what is gone, the next one) arrives marked, in both formats.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { expectedHash } from '../../../src/audit/record.js';
import { AuditLog } from '../../../src/audit/writer.js';
import { SinkSchema } from '../../../src/telemetry/siem/config.js';
import { ensureSiemDir } from '../../../src/telemetry/siem/cursor.js';
import type { Encoded } from '../../../src/telemetry/siem/encode.js';
import { Shipper } from '../../../src/telemetry/siem/shipper.js';
import type { Sink } from '../../../src/telemetry/siem/sinks/sink.js';
import { runCli } from '../../helpers/cli.js';
import { tempDir, until } from '../../helpers/gateway.js';

class MemorySink implements Sink {
  got: Encoded[] = [];
  async send(batch: readonly Encoded[]): Promise<void> {
    this.got.push(...batch);
  }
  async close(): Promise<void> {}
}

let state: string;
const shippers: Shipper[] = [];
afterEach(async () => {
  for (const s of shippers.splice(0)) await s.stop(0);
});

let logged: string[] = [];
const logger = pino({ level: 'debug' }, { write: (l: string) => void logged.push(l) });

/** A closed log of `n` records (seq 1..n, then the checkpoint its close writes), and its lines for editing. */
async function logOf(n: number): Promise<{ file: string; lines: string[] }> {
  state = tempDir();
  const log = await AuditLog.open({ dir: join(state, 'audit'), maxFileBytes: 1 << 20, headroomBytes: 0, checkpointEvery: 1_000_000 });
  for (let i = 0; i < n; i++) await log.append({ event: 'tools/call', agent: 'alice', tool: 'fx__echo', connector: 'fx', decision: 'deny', outcome: 'denied', n: i });
  await log.close();
  const file = join(state, 'audit', 'audit.jsonl');
  return { file, lines: readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') };
}

function ship(format: 'ocsf' | 'jsonl'): MemorySink {
  const sink = new MemorySink();
  const config = SinkSchema.parse({ name: 'mem', kind: 'webhook', url: 'https://siem.example/in', poll: '10ms', retry: { initial: '5ms', max: '20ms' }, format });
  ensureSiemDir(state);
  const s = new Shipper({ config, sink, auditDir: join(state, 'audit'), stateDir: state, productVersion: 't', logger });
  shippers.push(s);
  s.start();
  return sink;
}

/** What the SIEM is told about a shipped event's integrity (none: nothing to say). */
function marks(e: Encoded): string[] {
  const body = JSON.parse(e.json) as Record<string, unknown>;
  const ocsf = (body.unmapped as Record<string, unknown> | undefined)?.['gatehouse.integrity'];
  const record = body['gatehouse.integrity'];
  return (ocsf ?? record ?? []) as string[];
}

const bySeq = (sink: MemorySink, seq: number) => sink.got.find((e) => e.seq === seq) as Encoded;

describe('shipping a log that was changed on disk', () => {
  it.each(['ocsf', 'jsonl'] as const)('an edited record (decision deny → allow, hash left) arrives marked as edited, not as if fine (%s)', async (format) => {
    const { file, lines } = await logOf(8);
    lines[4] = (lines[4] as string).replace('"decision":"deny"', '"decision":"allow"');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const sink = ship(format);
    await until(() => sink.got.length === 9, 'every record');
    expect(marks(bySeq(sink, 5)).join(' ')).toMatch(/edited/);
    expect(sink.got.filter((e) => marks(e).length > 0).map((e) => e.seq)).toEqual([5]);
    expect(JSON.parse(bySeq(sink, 5).json)).toMatchObject(format === 'ocsf' ? { metadata: { labels: ['gatehouse.integrity'] } } : { decision: 'allow' });
  });

  it('a record rewritten whole (its hash recomputed) breaks the chain: the next record arrives marked', async () => {
    const { file, lines } = await logOf(8);
    const forged = JSON.parse(lines[4] as string) as Record<string, unknown>;
    forged.decision = 'allow';
    forged.hash = expectedHash(forged);
    lines[4] = JSON.stringify(forged);
    writeFileSync(file, `${lines.join('\n')}\n`);
    const sink = ship('ocsf');
    await until(() => sink.got.length === 9, 'every record');
    expect(marks(bySeq(sink, 6)).join(' ')).toMatch(/chain/);
  });

  it('a record removed from the middle is a gap the next record shipped says', async () => {
    const { file, lines } = await logOf(8);
    lines.splice(4, 1);
    writeFileSync(file, `${lines.join('\n')}\n`);
    const sink = ship('ocsf');
    await until(() => sink.got.length === 8, 'the records left');
    expect(marks(bySeq(sink, 6)).join(' ')).toMatch(/5\.\.5 .*not in the log/);
  });

  it('a line that is not a record is not skipped silently: the next record shipped says so', async () => {
    const { file, lines } = await logOf(6);
    lines.splice(3, 0, 'this is not a record');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const sink = ship('jsonl');
    await until(() => sink.got.length === 7, 'every record');
    expect(marks(bySeq(sink, 4)).join(' ')).toMatch(/not (a JSON|an audit) record/);
  });

  it('a line that is not a record at the end of the log is logged once, not at every poll (no log flood)', async () => {
    const { file, lines } = await logOf(3);
    writeFileSync(file, `${lines.join('\n')}\ngarbage at the end\n`);
    logged = [];
    const sink = ship('ocsf');
    await until(() => sink.got.length === 4, 'every record');
    await new Promise((r) => setTimeout(r, 300)); // some 30 polls
    expect(logged.filter((l) => l.includes('garbage') || l.includes('not a JSON record'))).toHaveLength(1);
  });

  it('a record whose time is not a time (which HEC and OTLP could never take) does not stall the sink: skipped, and said on the next', async () => {
    const { file, lines } = await logOf(6);
    lines[2] = (lines[2] as string).replace(/"time":"[^"]*"/, '"time":"yesterday at noon"');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const sink = ship('ocsf');
    await until(() => sink.got.some((e) => e.seq === 6), 'the records after it');
    for (const e of sink.got) expect(Number.isFinite(Date.parse(e.time))).toBe(true);
    expect(marks(bySeq(sink, 4)).join(' ')).toMatch(/time/);
  });

  it('gatehouse audit export says what is wrong (stderr) and marks the records as the shipper does', async () => {
    const { file, lines } = await logOf(8);
    lines[4] = (lines[4] as string).replace('"decision":"deny"', '"decision":"allow"');
    lines.splice(6, 1);
    writeFileSync(file, `${lines.join('\n')}\n`);
    const r = await runCli(['audit', 'export', '--state', state], { env: { HOME: state } });
    expect(r.code).toBe(0);
    const out = r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { metadata: { sequence: number }; unmapped?: Record<string, unknown> });
    const marked = out.filter((e) => e.unmapped?.['gatehouse.integrity'] !== undefined).map((e) => e.metadata.sequence);
    expect(marked).toEqual([5, 8]);
    expect(r.stderr).toMatch(/edited/);
    expect(r.stderr).toMatch(/records 7\.\.7 are not in the log/);
  });
});
