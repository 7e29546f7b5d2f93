/**
 * One `queryAudit` run in its own process (cold JIT, like a `gatehouse logs`
 * run), for bench/audit-query-profile.ts to start under `node --cpu-prof`
 * (worker threads that build sidecars write their own profiles). Prints
 * { records, nextCursor, startUpMs, ms, from, to } as JSON: `from` and `to`
 * are the query's start and end in µs of CLOCK_MONOTONIC, the clock of the
 * profile's sample times, so start-up samples can be told from the query's.
 *
 *   node --cpu-prof --cpu-prof-dir=DIR dist/bench/audit-query-child.js <audit dir> <filters JSON> <limit>
 */
import { queryAudit, type AuditFilters } from '../src/audit/query.js';

const [dir, filtersJson, limit] = process.argv.slice(2);
if (dir === undefined || filtersJson === undefined || limit === undefined) throw new Error('usage: audit-query-child.js <audit dir> <filters JSON> <limit>');
const filters = JSON.parse(filtersJson, (k, v: unknown) => ((k === 'since' || k === 'until') && typeof v === 'string' ? new Date(v) : v)) as AuditFilters;
const us = () => Number(process.hrtime.bigint() / 1000n);
const startUpMs = performance.now();
const from = us();
const page = await queryAudit(dir, filters, { limit: Number(limit) });
const to = us();
process.stdout.write(JSON.stringify({ records: page.records.length, nextCursor: page.nextCursor, startUpMs, ms: (to - from) / 1000, from, to }) + '\n');
