/**
 * A few worker threads for the audit's CPU-bound scans (verify: parse and
 * hash every line; query: build a file's block index). One per core; jobs
 * go to whichever worker is free, answers come back in job order.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { BlockIndexBody } from './block-index.js';
import type { RangeJob, RangeResult } from './verify-range.js';

export type PoolJob = { kind: 'verify'; job: RangeJob } | { kind: 'index'; path: string; size: number };
type Answer<J extends PoolJob> = J extends { kind: 'verify' } ? RangeResult : BlockIndexBody;

/**
 * The worker's module next to this one: `scan-worker.js` when running
 * compiled (dist). From source (the tests run the .ts files) the worker
 * first registers tsx (a devDependency, present wherever the sources run),
 * then loads `scan-worker.ts`.
 */
function workerEntry(): { entry: URL | string; options: WorkerOptions } {
  if (!import.meta.url.endsWith('.ts')) return { entry: new URL('./scan-worker.js', import.meta.url), options: {} };
  // tsx's ESM API (its package exports name it; require.resolve would give the CommonJS one).
  const pkg = createRequire(import.meta.url).resolve('tsx/package.json');
  const api = (JSON.parse(readFileSync(pkg, 'utf8')) as { exports: Record<string, { import: { default: string } }> }).exports['./esm/api']?.import.default ?? '';
  const tsx = new URL(api, pathToFileURL(pkg)).href;
  const worker = new URL('./scan-worker.ts', import.meta.url).href;
  return {
    entry: `import(${JSON.stringify(tsx)}).then((m) => { (m.register ?? m.default.register)(); return import(${JSON.stringify(worker)}); })`,
    options: { eval: true },
  };
}

interface Pending {
  msg: PoolJob;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export class ScanPool {
  readonly #workers: Worker[] = [];
  readonly #idle: Worker[] = [];
  readonly #queue: Pending[] = [];
  readonly #busy = new Map<Worker, Pending>();
  readonly #max: number;
  #closed = false;

  constructor(max = availableParallelism()) {
    this.#max = Math.max(1, max);
  }

  static cores(): number {
    return availableParallelism();
  }

  run<J extends PoolJob>(msg: J): Promise<Answer<J>> {
    if (this.#closed) return Promise.reject(new Error('scan pool is closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ msg, resolve: resolve as (v: unknown) => void, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      let w = this.#idle.pop();
      if (!w && this.#workers.length < this.#max) w = this.#start();
      if (!w) return;
      const p = this.#queue.shift() as Pending;
      this.#busy.set(w, p);
      w.postMessage(p.msg);
    }
  }

  #start(): Worker {
    const { entry, options } = workerEntry();
    const w = new Worker(entry, options);
    w.on('message', (m: { ok: true; value: unknown } | { ok: false; error: string }) => {
      const p = this.#busy.get(w);
      this.#busy.delete(w);
      this.#idle.push(w);
      if (p) {
        if (m.ok) p.resolve(m.value);
        else p.reject(new Error(m.error));
      }
      this.#pump();
    });
    const fail = (e: unknown) => {
      const p = this.#busy.get(w);
      this.#busy.delete(w);
      this.#workers.splice(this.#workers.indexOf(w), 1);
      const i = this.#idle.indexOf(w);
      if (i >= 0) this.#idle.splice(i, 1);
      p?.reject(e instanceof Error ? e : new Error(`audit scan worker stopped (${String(e)})`));
      // A worker that cannot start fails every job: do not start another for the rest.
      if (this.#workers.length === 0) for (const q of this.#queue.splice(0)) q.reject(e);
    };
    w.on('error', fail);
    w.on('exit', (code) => {
      if (!this.#closed && this.#workers.includes(w)) fail(new Error(`audit scan worker exited with code ${code}`));
    });
    this.#workers.push(w);
    return w;
  }

  /** Stops the workers; jobs not answered yet are rejected. */
  async close(): Promise<void> {
    this.#closed = true;
    const closed = new Error('scan pool is closed');
    for (const p of [...this.#busy.values(), ...this.#queue.splice(0)]) p.reject(closed);
    this.#busy.clear();
    await Promise.all(this.#workers.splice(0).map((w) => w.terminate()));
  }
}
