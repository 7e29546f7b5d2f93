/**
 * Redaction speed: `Redactor.redactText` over texts that hold no secret (the
 * usual case: every result, notification and log line is scanned), for 1, 10
 * and 100 known values. Prints a markdown table; never asserts.
 *
 *   node dist/bench/redact.js
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Redactor } from '../src/secrets/redact.js';

const prose = 'The quick brown fox jumps over the lazy dog; issue #1234 was closed by alice at 2025-01-01T00:00:00Z. ';
const record = JSON.stringify({ id: 123456789, sha: randomBytes(20).toString('hex'), uuid: '550e8400-e29b-41d4-a716-446655440000', mac: 'de:ad:be:ef:00:11', body: prose });

const TEXTS: Record<string, string> = {
  'prose, 1 MB': prose.repeat(10_000),
  'JSON with hashes and UUIDs, 1 MB': record.repeat(Math.ceil(1e6 / record.length)),
  'hex dump, 64 KB': Array.from({ length: 1300 }, () => (randomBytes(16).toString('hex').match(/../g) ?? []).join(' ')).join('\n'),
  'near-miss hex (worst case), 64 KB': 'ab:cd:ef:01:23:45:67;'.repeat(3100),
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

export function benchRedact(): string {
  const rows: string[] = [];
  for (const secrets of [1, 10, 100]) {
    const r = new Redactor();
    for (let i = 0; i < secrets; i++) r.learn(`s${i}`, randomBytes(24).toString('base64url'));
    for (const [name, text] of Object.entries(TEXTS)) {
      for (let i = 0; i < 3; i++) r.redactText(text);
      const ms: number[] = [];
      for (let i = 0; i < 15; i++) {
        const t0 = performance.now();
        r.redactText(text);
        ms.push(performance.now() - t0);
      }
      const m = median(ms);
      rows.push(`| ${secrets} | ${r.formCount} | ${name} | ${m.toFixed(3)} | ${(text.length / 1e6 / (m / 1e3)).toFixed(0)} |`);
    }
  }
  return ['| secrets | forms | text (no secret in it) | ms per pass (median of 15) | MB/s |', '|---|---|---|---|---|', ...rows].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.stdout.write(`${benchRedact()}\n`);
