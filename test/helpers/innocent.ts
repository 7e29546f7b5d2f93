/**
 * The bystander of the hostile-upstream suites (issue #24): while an attack
 * runs, an innocent agent on an innocent connector keeps listing tools and
 * calling `innocent__echo`, and measures its own latency; the gateway's RSS
 * and open fds are sampled before and after.
 *
 *   const t = await startTestGateway({ connectors: (log) => [innocentConnector(log), hostile] });
 *   const base = resources();
 *   const m = await measureInnocent(t, () => attack());
 *   expect(m.p99).toBeLessThan(INNOCENT_P99_BOUND_MS);
 *   await settled(base);
 */
import { readdirSync } from 'node:fs';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { stdioFixture, until, type ConnectorSpec, type TestGateway } from './gateway.js';

/**
 * The documented bound (README, "Limits"): an innocent agent's tools/list and
 * call p99 while one upstream attacks. Generous for a loaded 2-core machine;
 * the attacks it guards against cost seconds.
 */
export const INNOCENT_P99_BOUND_MS = 1_000;

export function innocentConnector(callLog: string): ConnectorSpec {
  return stdioFixture('innocent', callLog);
}

export interface InnocentMeasure {
  /** Latencies of every tools/list and innocent__echo round trip, in ms. */
  samples: number[];
  p50: number;
  p99: number;
  max: number;
  /** Round trips that failed (each is a bug: the innocent must never fail). */
  errors: string[];
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/**
 * Runs `attack` while an innocent agent ("bystander") alternates tools/list and
 * innocent__echo, one at a time, at most every 20 ms, until the attack ends
 * (and for at least `minMs`).
 */
export async function measureInnocent<T>(t: TestGateway, attack: () => Promise<T>, opts: { client?: Client; minMs?: number } = {}): Promise<InnocentMeasure & { result: T }> {
  const client = opts.client ?? (await t.client('bystander'));
  const samples: number[] = [];
  const errors: string[] = [];
  let done = false;
  const started = Date.now();
  const loop = (async () => {
    for (let i = 0; !done || Date.now() - started < (opts.minMs ?? 0); i++) {
      const t0 = performance.now();
      try {
        if (i % 2 === 0) {
          const list = await client.listTools();
          if (!list.tools.some((x) => x.name === 'innocent__echo')) errors.push('innocent__echo missing from tools/list');
        } else {
          const r = await client.callTool({ name: 'innocent__echo', arguments: { text: `ping ${i}` } });
          const text = (r.content as Array<{ text?: string }>)[0]?.text;
          if (r.isError === true || text !== `ping ${i}`) errors.push(`innocent__echo answered ${JSON.stringify(r).slice(0, 200)}`);
        }
      } catch (e) {
        errors.push((e as Error).message);
      }
      samples.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  let result: T;
  try {
    result = await attack();
  } finally {
    done = true;
    await loop;
  }
  const sorted = [...samples].sort((a, b) => a - b);
  return { result, samples, errors, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted[sorted.length - 1] ?? 0 };
}

export interface Resources {
  rss: number;
  fds: number;
}

/** This process's RSS and open fds (the test gateway runs in-process). */
export function resources(): Resources {
  return { rss: process.memoryUsage().rss, fds: readdirSync('/proc/self/fd').length };
}

/**
 * Waits until RSS and fds are back near `base`: fds within `fdSlack` (sockets
 * closing late), RSS within `rssSlack` bytes (the heap does not shrink to the
 * byte). Calls `gc` when node runs with --expose-gc.
 */
export async function settled(base: Resources, opts: { fdSlack?: number; rssSlack?: number; timeoutMs?: number } = {}): Promise<Resources> {
  const fdSlack = opts.fdSlack ?? 8;
  const rssSlack = opts.rssSlack ?? 96 * 1024 * 1024;
  return until(
    () => {
      (globalThis as { gc?: () => void }).gc?.();
      const now = resources();
      return now.fds <= base.fds + fdSlack && now.rss <= base.rss + rssSlack ? now : undefined;
    },
    `gateway resources back to baseline (rss ${Math.round(base.rss / 1048576)} MiB, ${base.fds} fds)`,
    opts.timeoutMs ?? 20_000,
  );
}

/** Audit records of executed calls (outcomes with a `call` id) of one connector. */
export function executedRecords(t: TestGateway, connector: string): Array<Record<string, unknown>> {
  return t.audit().filter((r) => r.event === 'tools/call' && typeof r.call === 'string' && r.connector === connector);
}
