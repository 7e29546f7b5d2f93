import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog, nodeAuditFs, type AuditFs, type AuditLogOptions } from '../../src/audit/writer.js';
import { expect } from 'vitest';
import { bodyDigestIs, checkLine } from '../../src/audit/line-check.js';
import { scanRecordLine } from '../../src/audit/line-scan.js';
import { tempDir } from '../helpers/tmp.js';

/** A fresh state directory; the log lives in `<state>/audit`. */
export function tempState(): { state: string; dir: string } {
  const state = tempDir('gh-audit-');
  return { state, dir: join(state, 'audit') };
}

export function openLog(dir: string, opts: Omit<AuditLogOptions, 'dir'> = {}): Promise<AuditLog> {
  return AuditLog.open({ checkpointIntervalMs: 3_600_000, ...opts, dir });
}

export function call(i: number, over: Record<string, unknown> = {}): { event: string; [k: string]: unknown } {
  return {
    event: 'tools/call',
    agent: `agent-${i % 3}`,
    session: `s-${i % 5}`,
    tool: i % 2 ? 'github__create_issue' : 'slack__post_message',
    connector: i % 2 ? 'github' : 'slack',
    upstreamTool: i % 2 ? 'create_issue' : 'post_message',
    args: { n: i, title: `issue ${i}` },
    decision: i % 7 === 0 ? 'deny' : 'allow',
    rule: i % 7 === 0 ? 'no-slack' : 'allow-github',
    outcome: i % 7 === 0 ? 'denied' : 'ok',
    upstreamMs: 3,
    resultBytes: 120,
    durationMs: 4.25,
    ...over,
  };
}

export function lines(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
}

export function writeLines(file: string, ls: string[]): void {
  writeFileSync(file, ls.map((l) => l + '\n').join(''));
}

/** The real fs with counters and a switch to make writes fail with an errno. */
export function countingFs(opts: { syncDelayMs?: number } = {}): AuditFs & { fsyncs: number; writes: number; failWith: string | undefined } {
  const fs = {
    fsyncs: 0,
    writes: 0,
    failWith: undefined as string | undefined,
    open: nodeAuditFs.open,
    close: nodeAuditFs.close,
    async write(fd: number, data: Buffer) {
      if (fs.failWith) throw Object.assign(new Error(`${fs.failWith}: simulated`), { code: fs.failWith });
      fs.writes++;
      await nodeAuditFs.write(fd, data);
    },
    async fdatasync(fd: number) {
      if (opts.syncDelayMs) await new Promise((r) => setTimeout(r, opts.syncDelayMs));
      fs.fsyncs++;
      await nodeAuditFs.fdatasync(fd);
    },
  };
  return fs;
}

/**
 * When scanRecordLine (the verify fast path) accepts `raw`, checkLine must
 * find it well-formed with the same values; when the digest accepts it too,
 * checkLine must find it ok. `scanned`: the scanner took it; `fast`: the
 * scanner and the digest both did.
 */
export function expectScanAgrees(raw: Buffer): { scanned: boolean; fast: boolean } {
  const hash = new Uint8Array(32);
  const prev = new Uint8Array(32);
  const f = scanRecordLine(raw, hash, prev, 0);
  if (f === undefined) return { scanned: false, fast: false };
  const c = checkLine(raw.toString('utf8'), raw);
  if (!c.ok && c.reason === 'malformed') expect.fail(`accepted a malformed line (${c.message}): ${JSON.stringify(raw.toString('latin1'))}`);
  const r = c.record as Record<string, unknown>;
  const str = (at: number, end: number) => (at < 0 ? undefined : raw.toString('utf8', at, end));
  const s = (v: unknown) => (typeof v === 'string' ? v : undefined);
  expect({
    seq: f.seq,
    event: f.event,
    time: str(f.time, f.timeEnd),
    call: str(f.call, f.callEnd),
    agent: str(f.agent, f.agentEnd),
    tool: str(f.tool, f.toolEnd),
    hash: Buffer.from(hash).toString('hex'),
    prev: Buffer.from(prev).toString('hex'),
  }).toEqual({ seq: r.seq, event: r.event, time: r.time, call: s(r.call), agent: s(r.agent), tool: s(r.tool), hash: r.hash, prev: r.prev });
  const fast = bodyDigestIs(raw);
  if (fast) expect(c.ok).toBe(true);
  return { scanned: true, fast };
}
