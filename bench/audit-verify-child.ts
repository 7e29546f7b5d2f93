/**
 * One `verifyAudit` run in its own process, for bench/audit-profile.ts to
 * start under `node --cpu-prof` (its worker threads write their own
 * profiles). Prints { records, ok, ms, cpuMs } as JSON.
 *
 *   node --cpu-prof --cpu-prof-dir=DIR dist/bench/audit-verify-child.js <audit dir> <checkpoint key JWK>
 */
import { loadPublicJwk } from '../src/audit/checkpoint.js';
import { verifyAudit } from '../src/audit/verify.js';

const [dir, keyFile] = process.argv.slice(2);
if (dir === undefined || keyFile === undefined) throw new Error('usage: audit-verify-child.js <audit dir> <checkpoint key JWK>');
const { key } = await loadPublicJwk(keyFile);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const report = await verifyAudit(dir, { publicKey: key });
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(JSON.stringify({ records: report.records, ok: report.ok, ms, cpuMs: (cpu.user + cpu.system) / 1000 }) + '\n');
