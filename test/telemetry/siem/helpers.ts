/**
 * A real gateway (in-process) shipping to SIEM sinks described as plain
 * objects, and what the tests ask of what arrived.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { readJsonLines, startTestGateway, stdioFixture, tempDir, until, type TestGateway } from '../../helpers/gateway.js';
import { MemoryStore } from '../../connectors/helpers.js';
import type { ShipperStats } from '../../../src/telemetry/siem/index.js';
import { seqOf } from './sims.js';

/** Quick retries and polls for tests (the defaults are 1 s..60 s back-off, 1 s poll). */
export const FAST = { retry: { initial: '20ms', max: '200ms' }, poll: '20ms', timeout: '5s' };

export function writeSiemFile(sinks: Array<Record<string, unknown>>): string {
  const file = join(tempDir('gatehouse-siem-'), 'siem.yaml');
  writeFileSync(file, stringify({ sinks }));
  return file;
}

export interface SiemGateway extends TestGateway {
  secrets: MemoryStore;
  stats(name?: string): ShipperStats;
  /** Every record in the audit log (current file), oldest first. */
  records(): Array<Record<string, unknown>>;
}

export async function startSiemGateway(sinks: Array<Record<string, unknown>>, o: { secrets?: Record<string, string>; connectors?: (log: string) => ReturnType<typeof stdioFixture>[]; audit?: Record<string, unknown> } = {}): Promise<SiemGateway> {
  const secrets = new MemoryStore(o.secrets ?? {});
  const t = await startTestGateway({
    connectors: o.connectors ?? ((log) => [stdioFixture('fx', log)]),
    runtime: { siem: writeSiemFile(sinks), secrets, ...(o.audit !== undefined ? { audit: o.audit } : {}) },
  });
  return Object.assign(t, {
    secrets,
    stats(name?: string) {
      const all = t.gw.siem?.stats() ?? [];
      const s = name === undefined ? all[0] : all.find((x) => x.sink === name);
      if (s === undefined) throw new Error(`no sink ${name ?? ''}`);
      return s;
    },
    records: () => readJsonLines(join(t.dirs.state, 'audit', 'audit.jsonl')),
  });
}

/** Waits until the sink has acknowledged every record written so far (backlog 0 and its cursor at the log's last seq). */
export async function drained(t: SiemGateway, name?: string, timeoutMs = 30_000): Promise<ShipperStats> {
  return until(
    () => {
      const s = t.stats(name);
      const last = t.records().at(-1)?.seq as number | undefined;
      return s.backlog === 0 && last !== undefined && s.lastShippedSeq === last ? s : undefined;
    },
    `sink ${name ?? ''} to drain`,
    timeoutMs,
  );
}

/** How often each seq arrived. */
export function counts(events: Array<Record<string, unknown>>): Map<number, number> {
  const m = new Map<number, number>();
  for (const e of events) m.set(seqOf(e), (m.get(seqOf(e)) ?? 0) + 1);
  return m;
}

/** Seqs 1..last that never arrived. */
export function missing(events: Array<Record<string, unknown>>, last: number): number[] {
  const c = counts(events);
  const out: number[] = [];
  for (let s = 1; s <= last; s++) if (!c.has(s)) out.push(s);
  return out;
}
