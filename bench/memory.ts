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

/** Direct children of a process (the stdio upstreams of `serve`). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter((x) => x !== '')
      .map(Number);
  } catch {
    return [];
  }
}

export async function benchMemory(opts: { sessions: number; settleMs: number }, log: (s: string) => void): Promise<string> {
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
    const upstreamRss = childrenOf(pid).reduce((s, c) => s + rssMiB(c), 0);
    const token = (await mintToken(await loadTokenKeys(state), 'bench-memory', 3_600_000)).token;
    for (let i = 0; i < opts.sessions; i++) {
      const s = await openSession({ url: info.url, headers: { authorization: `Bearer ${token}` } }, 1);
      sessions.push(s);
      await s.call('everything__echo', { message: `session ${i}` });
    }
    await sleep(opts.settleMs);
    const open = rssMiB(pid);
    log(`memory: idle ${fmt(idle, 1)} MiB, ${opts.sessions} sessions ${fmt(open, 1)} MiB`);
    return [
      '### 5. Memory (`gatehouse serve`, default registry)',
      '',
      '| state | gateway RSS MiB | per session KiB | stdio upstream RSS MiB |',
      '|---|---:|---:|---:|',
      `| idle (connectors: ${connectors}) | ${fmt(idle, 1)} | – | ${fmt(upstreamRss, 1)} |`,
      `| ${opts.sessions} open sessions (each initialized, one \`tools/call\`) | ${fmt(open, 1)} | ${fmt(((open - idle) * 1024) / opts.sessions, 1)} | – |`,
      '',
      '`node dist/src/cli/main.js serve --port 0 --json --state <tmp>` as a child, cwd the repository (so registry/ and policies/ are the shipped defaults); ' +
        `VmRSS from /proc/PID/status ${opts.settleMs / 1000} s after start (idle) and ${opts.settleMs / 1000} s after the last session opened (no forced GC). ` +
        '`github` is not ready without its token and a keychain: only `everything` (a stdio child, counted apart) runs offline.',
      '',
      machine,
    ].join('\n');
  } finally {
    for (const s of sessions) await s.close().catch(() => undefined);
    await serve.stop();
    rmSync(state, { recursive: true, force: true });
  }
}
