/**
 * Audit pages beyond the admin API's query: the chain's verify status (the
 * same walk as `gatehouse audit verify`) and an export of the current filter.
 */
import { existsSync } from 'node:fs';
import { Hono } from 'hono';
import { checkpointKeyPath, loadPublicJwk } from '../audit/checkpoint.js';
import { filtersFromParams } from '../audit/http.js';
import { MAX_QUERY_LIMIT, queryAudit, type AuditFilters } from '../audit/query.js';
import { AUDIT_ROW_HEADERS, auditRow } from '../audit/row.js';
import type { AuditRecord } from '../audit/types.js';
import { verifyAudit, type VerifyReport } from '../audit/verify.js';
import { GatehouseError } from '../errors.js';

/** An export stops here (say so in its last line): a bigger one is `gatehouse logs --json` on the host. */
export const MAX_EXPORT_RECORDS = 200_000;
/** A verify result is reused this long: a million records take seconds to walk. */
const VERIFY_REUSE_MS = 10_000;

export type VerifySummary = Pick<VerifyReport, 'ok' | 'records' | 'firstSeq' | 'lastSeq' | 'lastHash' | 'checkpoints' | 'signaturesChecked' | 'unsealed' | 'unfinishedCount'> & {
  lastCheckpoint: { seq: number; hash: string; time: string } | null;
  problems: VerifyReport['problems'];
  checkedAt: string;
};

/** One CSV field (RFC 4180), with a leading formula character defused (OWASP "CSV injection"): records hold what agents sent. */
export function csvField(v: string): string {
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

const CSV_HEADERS = ['SEQ', ...AUDIT_ROW_HEADERS, 'HASH'];
const csvLine = (cells: string[]): string => `${cells.map(csvField).join(',')}\r\n`;

/** Every record matching `filters`, newest first, in pages (never the whole log in memory). */
async function* matching(dir: string, filters: AuditFilters): AsyncGenerator<AuditRecord> {
  let cursor: string | undefined;
  let n = 0;
  for (;;) {
    const page = await queryAudit(dir, filters, { order: 'desc', limit: Math.min(MAX_QUERY_LIMIT, 5_000), ...(cursor !== undefined ? { cursor } : {}) });
    for (const r of page.records) {
      if (n++ >= MAX_EXPORT_RECORDS) return;
      yield r;
    }
    if (!page.more || page.nextCursor === null) return;
    cursor = page.nextCursor;
  }
}

export function consoleAuditRoutes(auditDir: string, stateDir: string): Hono {
  const r = new Hono();
  let verifying: { at: number; result: Promise<VerifySummary> } | undefined;

  r.get('/verify', async (c) => {
    if (verifying === undefined || Date.now() - verifying.at > VERIFY_REUSE_MS) {
      verifying = { at: Date.now(), result: verify(auditDir, stateDir) };
      verifying.result.catch(() => (verifying = undefined));
    }
    return c.json(await verifying.result);
  });

  r.get('/export', (c) => {
    const params = new URL(c.req.url).searchParams;
    const format = params.get('format') ?? 'jsonl';
    if (format !== 'jsonl' && format !== 'csv') throw new GatehouseError('USAGE', 'format must be jsonl or csv');
    params.delete('format');
    const q = filtersFromParams(params);
    const enc = new TextEncoder();
    const records = matching(auditDir, q.filters);
    let started = false;
    const body = new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        if (!started && format === 'csv') ctrl.enqueue(enc.encode(csvLine(CSV_HEADERS)));
        started = true;
        const next = await records.next();
        if (next.done) return ctrl.close();
        const rec = next.value;
        ctrl.enqueue(enc.encode(format === 'csv' ? csvLine([String(rec.seq), ...auditRow(rec), rec.hash]) : `${JSON.stringify(rec)}\n`));
      },
      async cancel() {
        await records.return(undefined);
      },
    });
    const name = `gatehouse-audit-${new Date().toISOString().replace(/[:.]/g, '-')}.${format}`;
    return new Response(body, {
      headers: { 'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8', 'content-disposition': `attachment; filename="${name}"` },
    });
  });
  return r;
}

async function verify(auditDir: string, stateDir: string): Promise<VerifySummary> {
  if (!existsSync(auditDir)) throw new GatehouseError('AUDIT_UNAVAILABLE', 'no audit log yet');
  const keyFile = checkpointKeyPath(stateDir);
  const publicKey = existsSync(keyFile) ? (await loadPublicJwk(keyFile)).key : undefined;
  const rep = await verifyAudit(auditDir, publicKey ? { publicKey } : {});
  const cp = rep.lastCheckpoint;
  return {
    ok: rep.ok,
    records: rep.records,
    firstSeq: rep.firstSeq,
    lastSeq: rep.lastSeq,
    lastHash: rep.lastHash,
    checkpoints: rep.checkpoints,
    signaturesChecked: rep.signaturesChecked,
    unsealed: rep.unsealed,
    unfinishedCount: rep.unfinishedCount,
    lastCheckpoint: cp === undefined ? null : { seq: cp.seq, hash: cp.hash, time: cp.time },
    problems: rep.problems.slice(0, 20),
    checkedAt: new Date().toISOString(),
  };
}
