import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { queryAudit } from '../../src/audit/query.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { checkpointKeyPath, loadCheckpointKey } from '../../src/audit/checkpoint.js';
import { openLog, tempState } from './helpers.js';

const CHILD = join(import.meta.dirname, '..', 'fixtures', 'crash-child.ts');

/** Runs the child under load, SIGKILLs it after `after` delivered results; returns the ids the client received. */
async function loadAndKill(dir: string, session: string, after: number): Promise<Set<number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, session], { stdio: ['ignore', 'pipe', 'inherit'] });
  const received = new Set<number>();
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', () => resolve());
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^ok (\d+)$/.exec(line);
        if (m) received.add(Number(m[1]));
        if (received.size >= after && child.exitCode === null && !child.killed) child.kill('SIGKILL');
      }
    });
  });
  expect(child.signalCode).toBe('SIGKILL');
  return received;
}

describe('crash consistency', () => {
  it('SIGKILL under load loses no record of a delivered result; on restart the chain continues and verifies', async () => {
    const { state, dir } = tempState();
    const publicKey = (await loadCheckpointKey(checkpointKeyPath(state))).publicKey;
    for (let round = 0; round < 2; round++) {
      const received = await loadAndKill(dir, `crash-${round}`, 3000);
      expect(received.size).toBeGreaterThanOrEqual(3000);

      // Restart: the writer continues the chain (moving aside a torn tail, if the kill cut a line).
      const log = await openLog(dir);
      await log.append({ event: 'gateway.start', round });
      await log.close();
      const report = await verifyAudit(dir, { publicKey });
      expect(report.problems).toEqual([]);
      expect(report.files.length).toBeGreaterThan(1); // rotation happened under load

      const recorded = new Set<number>();
      let cursor: string | undefined;
      for (;;) {
        const page = await queryAudit(dir, { event: 'tools/call', outcome: 'ok', session: `crash-${round}` }, { order: 'asc', limit: 10_000, ...(cursor ? { cursor } : {}) });
        for (const r of page.records) recorded.add((r.args as { id: number }).id);
        if (!page.more) break;
        cursor = page.nextCursor ?? undefined;
      }
      const missing = [...received].filter((id) => !recorded.has(id));
      expect(missing).toEqual([]);
    }
  });
});
