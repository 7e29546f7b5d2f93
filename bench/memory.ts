/**
 * Gateway memory: RSS of `gatehouse serve` (a child process, default
 * registry and policies, temporary state) idle, then with N open sessions.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenKeys, mintToken } from '../src/server/tokens.js';
import { openSession, type McpSession } from './lib/mcp-client.js';
import { ROOT, rssMiB, startProc } from './lib/procs.js';
import { fmt, machineLine, sleep } from './lib/stats.js';

interface ServeInfo {
  url: string;
  connectors: Array<{ name: string; status: { state: string } }>;
}

/** Every descendant of a process (the stdio upstreams of `serve`, each under its launcher). */
function descendantsOf(pid: number): number[] {
  let kids: number[];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter((x) => x !== '')
      .map(Number);
  } catch {
    return [];
  }
  return kids.flatMap((k) => [k, ...descendantsOf(k)]);
}

/**
 * RSS once V8's memory reducer has run: sampled every second for at least
 * `minMs`, then until it has not fallen by more than 0.5 MiB for `quietMs`
 * (at most `maxMs`). The reducer returns start-up (or session set-up)
 * garbage some 10-15 s after the allocations stop; a gateway left idle sits
 * at this figure.
 */
async function steadyRss(pid: number, opts: { minMs: number; quietMs: number; maxMs: number }): Promise<number> {
  const start = Date.now();
  const end = start + opts.maxMs;
  let low = rssMiB(pid);
  let since = start;
  while (Date.now() < end && (Date.now() - start < opts.minMs || Date.now() - since < opts.quietMs)) {
    await sleep(1000);
    const now = rssMiB(pid);
    if (now < low - 0.5) since = Date.now();
    low = Math.min(low, now);
  }
  return low;
}

export async function benchMemory(opts: { sessions: number; settleMs: number; steady: { minMs: number; quietMs: number; maxMs: number } }, log: (s: string) => void): Promise<string> {
  const machine = machineLine();
  const state = mkdtempSync(join(tmpdir(), 'gatehouse-bench-state-'));
  const serve = await startProc(process.execPath, [join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'serve', '--port', '0', '--json', '--state', state], /^(\{.*\})$/m, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: state, GATEHOUSE_LOG_LEVEL: 'warn' },
    timeoutMs: 60_000,
  });
  const sessions: McpSession[] = [];
  try {
    const info = JSON.parse(serve.match[1] ?? '{}') as ServeInfo;
    const pid = serve.child.pid ?? 0;
    const connectors = info.connectors.map((c) => `${c.name} ${c.status.state}`).join(', ');
    await sleep(opts.settleMs);
    const idle = rssMiB(pid);
    const idleSteady = await steadyRss(pid, opts.steady);
    const upstreamRss = descendantsOf(pid).reduce((s, c) => s + rssMiB(c), 0);
    // Spread over agents as real use would be: one agent may hold 32 sessions (the default per-agent limit).
    const keys = await loadTokenKeys(state);
    const tokens = await Promise.all(Array.from({ length: Math.ceil(opts.sessions / 25) }, async (_, a) => (await mintToken(keys, `bench-memory-${a + 1}`, 3_600_000)).token));
    for (let i = 0; i < opts.sessions; i++) {
      const s = await openSession({ url: info.url, headers: { authorization: `Bearer ${tokens[Math.floor(i / 25)]}` } }, 1);
      sessions.push(s);
      await s.call('everything__echo', { message: `session ${i}` });
    }
    await sleep(opts.settleMs);
    const open = rssMiB(pid);
    const openSteady = await steadyRss(pid, opts.steady);
    log(`memory: idle ${fmt(idle, 1)} MiB (steady ${fmt(idleSteady, 1)}), ${opts.sessions} sessions ${fmt(open, 1)} MiB (steady ${fmt(openSteady, 1)})`);
    return [
      '### 5. Memory (`gatehouse serve`, default registry)',
      '',
      '| state | gateway RSS MiB | per session KiB | stdio upstream RSS MiB |',
      '|---|---:|---:|---:|',
      `| idle (connectors: ${connectors}), ${opts.settleMs / 1000} s after start | ${fmt(idle, 1)} | – | ${fmt(upstreamRss, 1)} |`,
      `| idle, steady (after V8's memory reducer) | ${fmt(idleSteady, 1)} | – | – |`,
      `| ${opts.sessions} open sessions (${tokens.length} agents; each initialized, one \`tools/call\`), ${opts.settleMs / 1000} s after | ${fmt(open, 1)} | – | – |`,
      `| ${opts.sessions} open sessions, steady | ${fmt(openSteady, 1)} | ${fmt(((openSteady - idleSteady) * 1024) / opts.sessions, 1)} | – |`,
      '',
      '`node dist/src/cli/main.js serve --port 0 --json --state <tmp>` as a child, cwd the repository (so registry/ and policies/ are the shipped defaults); ' +
        `VmRSS from /proc/PID/status ${opts.settleMs / 1000} s after start (idle) and ${opts.settleMs / 1000} s after the last session opened (no forced GC); ` +
        `"steady": sampled each second for ${opts.steady.minMs / 1000} s and then until it has not fallen by more than 0.5 MiB for ${opts.steady.quietMs / 1000} s (at most ${opts.steady.maxMs / 1000} s), ` +
        'the lowest sample: V8 hands start-up garbage back some 10-15 s after the allocations stop, and a gateway left idle sits there. Per session: the steady difference from the steady idle row (2 s after, the start-up garbage may or may not have been collected yet, so a difference says nothing). ' +
        '`github` is not ready without its token and a keychain: only `everything` (a stdio server under its launcher, both counted apart: the upstream column sums every process below the gateway) runs offline.',
      '',
      machine,
    ].join('\n');
  } finally {
    for (const s of sessions) await s.close().catch(() => undefined);
    await serve.stop();
    rmSync(state, { recursive: true, force: true });
  }
}
