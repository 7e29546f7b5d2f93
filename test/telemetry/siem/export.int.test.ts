/**
 * `gatehouse audit export` (the built CLI) over a log written with known
 * times, rotated into several files: the time window and event filters,
 * both formats, --output, and the errors a script can rely on.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAuditFiles } from '../../../src/audit/files.js';
import { checkLine, expectedHash } from '../../../src/audit/record.js';
import { AuditLog } from '../../../src/audit/writer.js';
import { runCli } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/gateway.js';
import { ocsfClassOf } from '../../../src/telemetry/siem/ocsf.js';
import { ocsfProblems } from './ocsf-schema.js';

const T0 = Date.parse('2025-03-01T12:00:00.000Z');
const minute = (i: number) => new Date(T0 + i * 60_000).toISOString();
let state: string;
/** The events written, in order: one a minute from T0 (checkpoints also get a minute). */
const written: Array<{ event: string; time: string }> = [];

beforeAll(async () => {
  state = tempDir();
  let i = 0;
  const log = await AuditLog.open({ dir: join(state, 'audit'), maxFileBytes: 1_500, now: () => new Date(T0 + i * 60_000), headroomBytes: 0, checkpointEvery: 1_000_000 });
  const kinds = ['session.opened', 'tools/call.intent', 'tools/call', 'egress', 'tool.quarantined', 'tools/call'];
  for (; i < 60; i++) {
    const event = kinds[i % kinds.length] as string;
    await log.append({ event, agent: 'laptop-claude', session: 's1', tool: 'fx__echo', connector: 'fx', call: `c${Math.floor(i / 6)}`, outcome: 'ok', host: 'example.com', port: 443, n: i, text: i === 7 ? 'ünïcödé ✓' : 'x' });
    written.push({ event, time: minute(i) });
  }
  await log.close();
});
afterAll(() => undefined);

const exportCli = (...args: string[]) => runCli(['audit', 'export', '--state', state, ...args], { env: { HOME: state } });
const lines = (out: string) => out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('gatehouse audit export', () => {
  it('the log spans several rotated files (a guard: the window must cross files)', () => {
    expect(listAuditFiles(join(state, 'audit')).length).toBeGreaterThan(4);
  });

  it('--since/--until select exactly [since, until), oldest first, across rotated files, as valid OCSF events', async () => {
    const r = await exportCli('--since', minute(10), '--until', minute(40));
    expect(r.code).toBe(0);
    const events = lines(r.stdout);
    const want = written.filter((w) => w.time >= minute(10) && w.time < minute(40));
    expect(events.map((e) => (e.metadata as { original_time: string }).original_time)).toEqual(want.map((w) => w.time));
    for (const e of events) expect(ocsfProblems(e, ocsfClassOf((e.metadata as { event_code: string }).event_code))).toEqual([]);
    // Intents are records too: an export has them all.
    expect(events.some((e) => (e.metadata as { event_code: string }).event_code === 'tools/call.intent')).toBe(true);
  });

  it('--event takes a name or a glob', async () => {
    const one = lines((await exportCli('--event', 'egress')).stdout);
    expect(one).toHaveLength(written.filter((w) => w.event === 'egress').length);
    expect(one.every((e) => e.class_uid === 4001)).toBe(true);
    const glob = lines((await exportCli('--event', 'tools/*', '--since', minute(0), '--until', minute(12))).stdout);
    expect(glob.map((e) => (e.metadata as { event_code: string }).event_code)).toEqual(written.slice(0, 12).filter((w) => w.event.startsWith('tools/')).map((w) => w.event));
  });

  it('--format jsonl writes the records as stored: every record\'s content still matches its hash (non-ASCII escaped, so not the log\'s bytes)', async () => {
    const r = await exportCli('--format', 'jsonl', '--until', minute(20));
    const out = r.stdout.split('\n').filter((l) => l !== '');
    expect(out).toHaveLength(20);
    for (const l of out) {
      const record = JSON.parse(l) as Record<string, unknown>;
      expect(expectedHash(record)).toBe(record.hash);
    }
    // Escaped lines are not what the writer wrote: audit verify would call them re-encoded.
    expect(checkLine(out[7] as string)).toMatchObject({ ok: false, reason: 'edited' });
    // Non-ASCII is written as \u escapes (the same string), and the hash still verifies.
    expect(out[7]).toContain('\\u00fcn\\u00efc\\u00f6d\\u00e9 \\u2713');
    expect((JSON.parse(out[7] as string) as { text: string }).text).toBe('ünïcödé ✓');
  });

  it('--output writes a 0600 file whole and says what it wrote on stderr; stdout stays empty', async () => {
    const file = join(tempDir(), 'export.ndjson');
    const r = await exportCli('--output', file, '--since', minute(50), '--until', minute(60));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^exported 10 records \(seq 51\.\.60\) as OCSF to /);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(lines(readFileSync(file, 'utf8'))).toHaveLength(10);
  });

  it('a window with nothing in it is not an error', async () => {
    const r = await exportCli('--since', '2030-01-01T00:00:00Z');
    expect([r.code, r.stdout, r.stderr]).toEqual([0, '', 'no matching audit records\n']);
  });

  it.each([
    [['--format', 'cef'], 2, /--format must be one of: ocsf, jsonl/],
    [['--since', minute(30), '--until', minute(10)], 2, /--since .* must be before --until/],
    [['--since', '90'], 2, /--since: invalid duration "90"; a bare number has no unit: write 90s, 90m or 90h/],
    [['--event', 'tool/call'], 2, /--event: no audit event is named "tool\/call"/],
  ] as const)('usage errors exit 2 with how to fix them: %j', async (args, code, message) => {
    const r = await exportCli(...args);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('no audit log in the state directory: exit 3, naming the directory', async () => {
    const r = await runCli(['audit', 'export', '--state', tempDir()], { env: { HOME: state } });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/no audit log in .*\/audit: start the gateway once/);
  });
});
