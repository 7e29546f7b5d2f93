/** Memory read-outs shared by the memory bench's child processes (run with --expose-gc). */
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

export interface MemoryNow {
  /** VmRSS, bytes. */
  rss: number;
  heapUsed: number;
  heapTotal: number;
  /** C++ memory owned by JS objects (Buffers, ArrayBuffers, …). */
  external: number;
  arrayBuffers: number;
  /** V8's code space (bytecode lives in old space; this is machine code and builtins' trampolines). */
  codeSpace: number;
}

/** After two full collections (the second frees what finalizers of the first released), when gc is exposed. */
export function memoryNow(): MemoryNow {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  const code = getHeapSpaceStatistics().find((s) => s.space_name === 'code_space');
  return {
    rss: rss ? Number(rss[1]) * 1024 : m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    codeSpace: code?.space_used_size ?? 0,
  };
}

export interface LoadedScript {
  url: string;
  length: number;
}

/** Every script compiled in this isolate, from the inspector (enabling the debugger reports those already parsed). */
export async function loadedScripts(): Promise<LoadedScript[]> {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  const seen = new Map<string, number>();
  session.on('Debugger.scriptParsed', (m) => {
    const p = m.params as { url: string; length?: number };
    if (p.url !== '') seen.set(p.url, Math.max(seen.get(p.url) ?? 0, p.length ?? 0));
  });
  await new Promise<void>((resolve, reject) => session.post('Debugger.enable', (e) => (e ? reject(e) : resolve())));
  await new Promise<void>((resolve) => session.post('Debugger.disable', () => resolve()));
  session.disconnect();
  return [...seen].map(([url, length]) => ({ url, length }));
}
