/**
 * Audit log benchmarks: durable append throughput with group commit, and
 * query / verify time over 1,000,000 records (queries: the first one, which
 * builds the rotated files' sidecar indexes, then each with them; verify:
 * worker threads, then one thread, then once more under --cpu-prof for
 * where its time goes: bench/audit-profile.ts). Prints a markdown table,
 * the query goal with a profile of each query over it and of the --grep one
 * (bench/audit-query-goal.ts), and the verify profile; does not assert on
 * timings.
 *
 *   npm run build && node dist/bench/audit.js
 */
import { existsSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sidecarPath } from '../src/audit/block-index.js';
import { loadCheckpointKey } from '../src/audit/checkpoint.js';
import { listAuditFiles } from '../src/audit/files.js';
import { queryAudit, type AuditFilters } from '../src/audit/query.js';
import { verifyAudit } from '../src/audit/verify.js';
import { AuditLog, nodeAuditFs, type AuditFs } from '../src/audit/writer.js';
import { profileVerify, verifyProfileMarkdown } from './audit-profile.js';
import { queryNotesMarkdown, toProfile, type QueryLog, type QueryTiming } from './audit-query-goal.js';
import { profileQuery, type QueryProfile } from './audit-query-profile.js';

function record(i: number): { event: string; [k: string]: unknown } {
  const deny = i % 13 === 0;
  return {
    event: 'tools/call',
    agent: i % 100_000 === 7 ? 'agent-rare' : `agent-${i % 50}`,
    session: `sess-${Math.floor(i / 100)}`,
    tool: i % 3 === 0 ? 'github__create_issue' : i % 3 === 1 ? 'slack__post_message' : 'jira__search',
    connector: i % 3 === 0 ? 'github' : i % 3 === 1 ? 'slack' : 'jira',
    upstreamTool: i % 3 === 0 ? 'create_issue' : i % 3 === 1 ? 'post_message' : 'search',
    args: { title: `Issue number ${i}`, body: 'Steps to reproduce: open the page, click the button.', labels: ['bug', 'p2'] },
    decision: deny ? 'deny' : 'allow',
    rule: deny ? 'no-prod-writes' : 'allow-readonly',
    outcome: deny ? 'denied' : i % 97 === 0 ? 'error' : 'ok',
    upstreamMs: 12,
    resultBytes: 512,
    durationMs: 13.5,
  };
}

async function appendThroughput(concurrency: number, total: number): Promise<{ perSec: number; fsyncs: number; batch: number }> {
  const state = mkdtempSync(join(tmpdir(), 'gh-bench-audit-'));
  try {
    const log = await AuditLog.open({ dir: join(state, 'audit'), checkpointIntervalMs: 3_600_000 });
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) await log.append(record(next++));
      }),
    );
    const s = (performance.now() - t0) / 1000;
    const { fsyncs, appends } = log.stats;
    await log.close();
    return { perSec: total / s, fsyncs, batch: appends / fsyncs };
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
}

/** Writes `n` records through the real writer (rotation and checkpoints on), without fsync, to build a big log fast. */
async function buildLog(dir: string, n: number): Promise<void> {
  // Opened without O_DSYNC (nodeAuditFs's writes are durable themselves) and nothing synced.
  const noSync: AuditFs = { ...nodeAuditFs, open: (path) => openSync(path, 'a', 0o600), fdatasync: async () => undefined };
  const log = await AuditLog.open({ dir, fs: noSync, checkpointIntervalMs: 3_600_000 });
  let next = 0;
  await Promise.all(
    Array.from({ length: 512 }, async () => {
      while (next < n) await log.append(record(next++));
    }),
  );
  await log.close();
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export async function benchAudit(opts: { records?: number } = {}): Promise<string> {
  const N = opts.records ?? 1_000_000;
  const rows: string[][] = [];
  for (const [c, total] of [
    [1, 2_000],
    [64, 60_000],
    [256, 120_000],
  ] as const) {
    const r = await appendThroughput(c, total);
    rows.push([`durable append, concurrency ${c}`, `${fmt(r.perSec)} records/s`, `${fmt(total)} records, ${fmt(r.fsyncs)} synchronous writes (O_DSYNC: each one durable when it returns), ${r.batch.toFixed(1)} records per write`]);
  }

  const state = mkdtempSync(join(tmpdir(), 'gh-bench-audit-'));
  let queryNotes = '';
  let verifyNotes = '';
  try {
    const dir = join(state, 'audit');
    const build = await timed(() => buildLog(dir, N));
    const files = listAuditFiles(dir);
    const bytes = files.reduce((s, f) => s + f.size, 0);
    rows.push([`build ${fmt(N)}-record log (writer, no fsync)`, `${(build.ms / 1000).toFixed(1)} s`, `${files.length} files, ${fmt(bytes / 1048576)} MiB`]);

    const queries: [string, AuditFilters, number][] = [
      ['--agent agent-rare (10 matches, full scan)', { agent: 'agent-rare' }, 100],
      ['--agent agent-7 --decision deny --limit 1000', { agent: 'agent-7', decision: 'deny' }, 1000],
      ['--tool "jira__*" --outcome error (full scan)', { tool: 'jira__*', outcome: 'error' }, 10_000],
      ['--grep "Issue number 4242" (full scan)', { grep: 'Issue number 4242' }, 100],
      ['--connector slack --limit 50 (newest first)', { connector: 'slack' }, 50],
    ];
    // The writer indexed each file it rotated. Without those sidecars (a log from before them), the first
    // filtered query builds them (worker threads); later ones use them.
    const rotated = files.filter((f) => !f.current);
    const byWriter = rotated.filter((f) => existsSync(sidecarPath(f.path))).length;
    const removeSidecars = () => {
      for (const f of rotated) rmSync(sidecarPath(f.path), { force: true });
    };
    removeSidecars();
    const [firstName, firstFilter, firstLimit] = queries[0] as [string, AuditFilters, number];
    const first = await timed(() => queryAudit(dir, firstFilter, { limit: firstLimit }));
    const timings: QueryTiming[] = [{ name: firstName, filters: firstFilter, limit: firstLimit, ms: first.ms, first: true }];
    rows.push([
      `query ${firstName}, first query without sidecars: builds them`,
      `${first.ms.toFixed(0)} ms`,
      `${fmt(first.value.records.length)} records returned; ${rotated.length} rotated files indexed (the writer had indexed ${byWriter} as it rotated them)`,
    ]);
    for (const [name, f, limit] of queries) {
      const q = await timed(() => queryAudit(dir, f, { limit }));
      rows.push([`query ${name}`, `${q.ms.toFixed(0)} ms`, `${fmt(q.value.records.length)} records returned`]);
      timings.push({ name, filters: f, limit, ms: q.ms, first: false });
    }
    const queryLog: QueryLog = { records: N, bytes, rotated: rotated.length, rotatedBytes: rotated.reduce((s, f) => s + f.size, 0), byWriter, cores: availableParallelism() };
    const profiles: { timing: QueryTiming; profile: QueryProfile }[] = [];
    for (const t of toProfile(timings, queryLog)) {
      // The first query's profile is of the same case: rotated files without sidecars (it builds them again).
      if (t.first) removeSidecars();
      profiles.push({ timing: t, profile: await profileQuery(dir, t.filters, t.limit) });
    }
    queryNotes = queryNotesMarkdown(timings, profiles, queryLog);
    const keyFile = join(state, 'keys', 'audit-checkpoint.jwk');
    const key = await loadCheckpointKey(keyFile);
    const v = await timed(() => verifyAudit(dir, { publicKey: key.publicKey }));
    rows.push([`verify ${fmt(v.value.records)} records`, `${(v.ms / 1000).toFixed(2)} s`, `${v.value.checkpoints} checkpoint signatures, ok=${v.value.ok}, ${availableParallelism()} worker threads`]);
    const v1 = await timed(() => verifyAudit(dir, { publicKey: key.publicKey, threads: 1 }));
    rows.push([`verify ${fmt(v1.value.records)} records, one thread`, `${(v1.ms / 1000).toFixed(2)} s`, `ok=${v1.value.ok}`]);
    const profile = await profileVerify(dir, keyFile);
    verifyNotes = verifyProfileMarkdown(profile, { records: v.value.records, ms: v.ms, workers: availableParallelism(), oneThreadMs: v1.ms, cores: availableParallelism() });
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
  return ['| audit benchmark | result | notes |', '|---|---|---|', ...rows.map((r) => `| ${r.join(' | ')} |`), '', queryNotes, '', verifyNotes].join('\n') + '\n';
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(await benchAudit());
}
