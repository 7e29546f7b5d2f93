/**
 * Preloaded into `gatehouse serve` by the memory bench
 * (`node --expose-gc --import=…/memory-probe.js dist/src/cli/main.js serve …`,
 * spawned with an IPC channel): answers the bench's questions about the
 * running gateway without a hook in the product.
 *   {op: 'stats'}            → RSS, process.memoryUsage() and V8 heap spaces after a full GC
 *   {op: 'snapshot', path}   → a heap snapshot written to path (after a full GC)
 *   {op: 'scripts'}          → every script V8 has compiled in the main isolate (url, source length)
 */
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { loadedScripts, memoryNow } from './memory-measure.js';

type Request = { id: number; op: 'stats' } | { id: number; op: 'snapshot'; path: string } | { id: number; op: 'scripts' };

function threads(): number {
  const m = /Threads:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

async function answer(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'stats':
      return { ...memoryNow(), threads: threads(), spaces: getHeapSpaceStatistics() };
    case 'snapshot':
      memoryNow();
      return { path: writeHeapSnapshot(req.path) };
    case 'scripts':
      return { scripts: await loadedScripts() };
  }
}

if (process.send !== undefined) {
  process.channel?.unref();
  process.on('message', (req: Request) => {
    void answer(req).then(
      (result) => process.send?.({ id: req.id, result }),
      (e: unknown) => process.send?.({ id: req.id, error: e instanceof Error ? e.message : String(e) }),
    );
  });
}
