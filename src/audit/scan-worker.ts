/** Worker thread of ScanPool (pool.ts): runs one job at a time and posts the answer back. */
import { parentPort } from 'node:worker_threads';
import { summarizeFile } from './block-index.js';
import type { PoolJob } from './pool.js';
import { transferList, READ_BYTES, verifyRange } from './verify-range.js';

const port = parentPort;
/** Reused by every verify job (one runs at a time): fresh memory costs page faults on each read. */
let readBuf: Buffer | undefined;
port?.on('message', (msg: PoolJob) => {
  void (async () => {
    try {
      if (msg.kind === 'verify') {
        readBuf ??= Buffer.allocUnsafeSlow(READ_BYTES);
        const value = await verifyRange(msg.job, readBuf);
        port.postMessage({ ok: true, value }, transferList(value));
      } else {
        port.postMessage({ ok: true, value: await summarizeFile(msg.path, msg.size) });
      }
    } catch (e) {
      port.postMessage({ ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  })();
});
