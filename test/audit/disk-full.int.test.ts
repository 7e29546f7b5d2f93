import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { handleToolCall } from '../../src/broker/pipeline.js';
import { isGatehouseError } from '../../src/errors.js';
import { verifyAudit } from '../../src/audit/verify.js';
import { call, countingFs, openLog, tempState } from './helpers.js';
import { echoDeps } from './pipeline-deps.js';
import { until } from '../helpers/gateway.js';
import { fill, tinyTmpfs, unmountTmpfs } from '../helpers/tmpfs.js';

afterAll(unmountTmpfs);

describe('disk full: calls are refused, then accepted again when space is back', () => {
  it('ENOSPC on a real tmpfs: append rejects AUDIT_UNAVAILABLE, assertWritable throws, the pipeline refuses the call; recovery after space is freed', async () => {
    const state = tinyTmpfs(256);
    const dir = join(state, 'audit');
    // No headroom: this is the last line of defence, when even the reserve is gone.
    // Failed retries counted from the log's own messages (each one logs why): the event that shows retries happened.
    let failedRetries = 0;
    const logger = pino({ level: 'warn' }, { write: (line: string) => void (/still cannot open|write failed/.test(line) && failedRetries++) });
    const log = await openLog(dir, { logger, retryMs: 50, headroomBytes: 0 });
    await log.append(call(0));
    const filler = fill(state);

    let refused: unknown;
    for (let i = 1; i < 10_000 && refused === undefined; i++) {
      await log.append(call(i, { args: { pad: 'x'.repeat(500) } })).catch((e: unknown) => (refused = e));
    }
    expect(isGatehouseError(refused, 'AUDIT_UNAVAILABLE')).toBe(true);
    expect((refused as Error).message).toMatch(/ENOSPC.*calls are refused until it can/);
    expect(() => log.assertWritable()).toThrow(/ENOSPC/);
    await expect(log.append(call(1))).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });

    // The gateway's pipeline refuses the call and never reaches the upstream.
    let upstreamCalls = 0;
    const deps = echoDeps(log, () => upstreamCalls++);
    await expect(handleToolCall(deps, { agent: 'a', session: 's', name: 'demo__echo', args: { x: 1 }, signal: new AbortController().signal })).rejects.toMatchObject({
      code: 'AUDIT_UNAVAILABLE',
    });
    expect(upstreamCalls).toBe(0);

    // Still full: retries keep failing and the log stays refused. The wait is for two more failed
    // retries (a retry clears the failure for a moment, then fails again), not for a fixed time.
    const failedSoFar = failedRetries;
    await until(() => failedRetries >= failedSoFar + 2 && log.failed !== undefined, 'two failed retries on the full disk', 20_000);
    expect(log.failed).toMatch(/ENOSPC/);

    unlinkSync(filler);
    await until(() => log.failed === undefined, 'the audit log to recover', 20_000);
    const result = await handleToolCall(deps, { agent: 'a', session: 's', name: 'demo__echo', args: { x: 2 }, signal: new AbortController().signal });
    expect(result.isError).toBeUndefined();
    expect(upstreamCalls).toBe(1);
    await log.close();

    const report = await verifyAudit(dir);
    expect(report.problems).toEqual([]);
    const { queryAudit } = await import('../../src/audit/query.js');
    const recovered = (await queryAudit(dir, { event: 'audit.recovered' })).records;
    expect(recovered[0]).toMatchObject({ reason: 'write-failed', error: { code: 'ENOSPC' } });
  });

  it('EIO and EACCES from the fs layer: refused with the errno in the message, recovered when writes work again', async () => {
    for (const errno of ['EIO', 'EACCES']) {
      const { dir } = tempState();
      const fs = countingFs();
      const log = await openLog(dir, { fs, retryMs: 30 });
      await log.append(call(0));
      fs.failWith = errno;
      await expect(log.append(call(1))).rejects.toThrow(new RegExp(`${errno}.*refused`));
      expect(() => log.assertWritable()).toThrow(errno);
      fs.failWith = undefined;
      await until(() => log.failed === undefined, 'the audit log to recover', 20_000);
      await log.append(call(2));
      await log.close();
      expect((await verifyAudit(dir)).problems).toEqual([]);
    }
  });
});
