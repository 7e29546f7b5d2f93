/**
 * Gateway memory: RSS of `gatehouse serve` (a child process, default
 * registry and policies, temporary state) idle, then with N open sessions;
 * then where it goes (bench/memory-breakdown.ts): the modules loaded at
 * start, the V8 heap, and what one open session holds.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenKeys, mintToken } from '../src/server/tokens.js';
import { memoryBreakdown, split, type MemoryBreakdown } from './memory-breakdown.js';
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

/** Opens `n` sessions spread over agents as real use would be: one agent may hold 32 sessions (the default per-agent limit); each initialized and one `tools/call`. */
async function openSessions(url: string, state: string, n: number, into: McpSession[]): Promise<number> {
  const keys = await loadTokenKeys(state);
  const tokens = await Promise.all(Array.from({ length: Math.ceil(n / 25) }, async (_, a) => (await mintToken(keys, `bench-memory-${a + 1}`, 3_600_000)).token));
  for (let i = 0; i < n; i++) {
    const s = await openSession({ url, headers: { authorization: `Bearer ${tokens[Math.floor(i / 25)]}` } }, 1);
    into.push(s);
    await s.call('everything__echo', { message: `session ${i}` });
  }
  return tokens.length;
}

export interface MemoryOptions {
  sessions: number;
  settleMs: number;
  steady: { minMs: number; quietMs: number; maxMs: number };
  /** Two heap snapshots of the probed gateway (some 20 s on 2 cores); default on. */
  snapshots?: boolean;
}

const MiB = 1024 * 1024;
/** "80 MB" in the goal is decimal. */
const IDLE_GOAL_MIB = 80e6 / MiB;
const SESSION_GOAL_KIB = 50;

export async function benchMemory(opts: MemoryOptions, log: (s: string) => void): Promise<string> {
  const machine = machineLine();
  const env = (state: string) => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: state, GATEHOUSE_LOG_LEVEL: 'warn' });
  const state = mkdtempSync(join(tmpdir(), 'gatehouse-bench-state-'));
  const serve = await startProc(process.execPath, [join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'serve', '--port', '0', '--json', '--state', state], /^(\{.*\})$/m, {
    env: env(state),
    timeoutMs: 60_000,
  });
  const sessions: McpSession[] = [];
  let measured: string[];
  let idle2s: number;
  let idleSteady: number;
  let perSessionKiB: number;
  try {
    const info = JSON.parse(serve.match[1] ?? '{}') as ServeInfo;
    const pid = serve.child.pid ?? 0;
    const connectors = info.connectors.map((c) => `${c.name} ${c.status.state}`).join(', ');
    await sleep(opts.settleMs);
    const idle = rssMiB(pid);
    idle2s = idle;
    idleSteady = await steadyRss(pid, opts.steady);
    const upstreamRss = descendantsOf(pid).reduce((s, c) => s + rssMiB(c), 0);
    const agents = await openSessions(info.url, state, opts.sessions, sessions);
    await sleep(opts.settleMs);
    const open = rssMiB(pid);
    const openSteady = await steadyRss(pid, opts.steady);
    perSessionKiB = ((openSteady - idleSteady) * 1024) / opts.sessions;
    log(`memory: idle ${fmt(idle, 1)} MiB (steady ${fmt(idleSteady, 1)}), ${opts.sessions} sessions ${fmt(open, 1)} MiB (steady ${fmt(openSteady, 1)})`);
    measured = [
      '| state | gateway RSS MiB | per session KiB | stdio upstream RSS MiB |',
      '|---|---:|---:|---:|',
      `| idle (connectors: ${connectors}), ${opts.settleMs / 1000} s after start | ${fmt(idle, 1)} | – | ${fmt(upstreamRss, 1)} |`,
      `| idle, steady (after V8's memory reducer) | ${fmt(idleSteady, 1)} | – | – |`,
      `| ${opts.sessions} open sessions (${agents} agents; each initialized, one \`tools/call\`), ${opts.settleMs / 1000} s after | ${fmt(open, 1)} | – | – |`,
      `| ${opts.sessions} open sessions, steady | ${fmt(openSteady, 1)} | ${fmt(perSessionKiB, 1)} | – |`,
      '',
      '`node dist/src/cli/main.js serve --port 0 --json --state <tmp>` as a child, cwd the repository (so registry/ and policies/ are the shipped defaults); ' +
        `VmRSS from /proc/PID/status ${opts.settleMs / 1000} s after start (idle) and ${opts.settleMs / 1000} s after the last session opened (no forced GC); ` +
        `"steady": sampled each second for ${opts.steady.minMs / 1000} s and then until it has not fallen by more than 0.5 MiB for ${opts.steady.quietMs / 1000} s (at most ${opts.steady.maxMs / 1000} s), ` +
        'the lowest sample: V8 hands start-up garbage back some 10-15 s after the allocations stop, and a gateway left idle sits there. Per session: the steady difference from the steady idle row (2 s after, the start-up garbage may or may not have been collected yet, so a difference says nothing). ' +
        '`github` is not ready without its token and a keychain: only `everything` (a stdio server under its launcher, both counted apart: the upstream column sums every process below the gateway) runs offline.',
    ];
  } finally {
    for (const s of sessions) await s.close().catch(() => undefined);
    await serve.stop();
    rmSync(state, { recursive: true, force: true });
  }

  log('memory: where it goes (probed gateway, heap snapshots, imports in fresh processes)...');
  const probeState = mkdtempSync(join(tmpdir(), 'gatehouse-bench-state-'));
  const probeSessions: McpSession[] = [];
  let b: MemoryBreakdown;
  try {
    b = await memoryBreakdown({ state: probeState, env: env(probeState), settleMs: opts.settleMs, snapshots: opts.snapshots ?? true, aloneMinBytes: 2 * MiB }, async (url) => {
      await openSessions(url, probeState, opts.sessions, probeSessions);
      return async () => {
        for (const s of probeSessions) await s.close().catch(() => undefined);
      };
    });
  } finally {
    rmSync(probeState, { recursive: true, force: true });
  }
  return [
    '### 5. Memory (`gatehouse serve`, default registry)',
    '',
    ...measured,
    '',
    ...whereItGoes(b, { sessions: opts.sessions, idle: idle2s, idleSteady, perSessionKiB }),
    '',
    machine,
  ].join('\n');
}

const mib = (bytes: number) => fmt(bytes / MiB, 1);
const kib = (bytes: number) => fmt(bytes / 1024, 1);

/** The breakdown tables and the closing sentence (issue #21: a goal not met shows where the memory goes and what would be needed). */
function whereItGoes(b: MemoryBreakdown, m: { sessions: number; idle: number; idleSteady: number; perSessionKiB: number }): string[] {
  const out: string[] = [];
  // 1. Start-up: what each group of modules adds, then what running adds.
  const shown = b.rows.filter((r) => r.label.startsWith('gateway code') || r.heapUsed + r.offHeap >= 0.5 * MiB);
  const rest = b.rows.filter((r) => !shown.includes(r));
  const sum = (rs: Array<{ heapUsed: number; heapFree: number; offHeap: number }>) => rs.reduce((a, r) => ({ heapUsed: a.heapUsed + r.heapUsed, heapFree: a.heapFree + r.heapFree, offHeap: a.offHeap + r.offHeap }), { heapUsed: 0, heapFree: 0, offHeap: 0 });
  const row = (what: string, r: { heapUsed: number; heapFree: number; offHeap: number }, alone = '–') =>
    `| ${what} | ${mib(r.heapUsed + r.heapFree + r.offHeap)} | ${mib(r.heapUsed)} | ${mib(r.heapFree)} | ${mib(r.offHeap)} | ${alone} |`;
  const alone = (r: MemoryBreakdown['rows'][number]) => (r.alone ? `${mib(r.alone.rss)} / ${mib(r.alone.heapUsed)}` : '–');
  const floor = split(b.floor);
  const imported = split(b.imported);
  const idle = split(b.idle);
  const running = { heapUsed: idle.heapUsed - imported.heapUsed, heapFree: idle.heapFree - imported.heapFree, offHeap: idle.offHeap - imported.offHeap };
  out.push(
    '#### Where idle memory goes',
    '',
    '| what | RSS MiB | V8 heap used | V8 heap committed, free | outside the V8 heap | imported alone: RSS / heap used MiB |',
    '|---|---:|---:|---:|---:|---:|',
    row('node itself (an empty process)', floor),
    ...shown.filter((r) => !r.label.startsWith('gateway code')).map((r) => row(`+ \`${r.label}\`${r.packages.length > 1 ? ` (${r.packages.length} packages)` : ''}`, r, alone(r))),
    row(`+ ${rest.length} smaller groups (${rest.map((r) => r.label.replace(/^shared: /, '')).join(', ')})`, sum(rest)),
    ...shown.filter((r) => r.label.startsWith('gateway code')).map((r) => row(`+ ${r.label}`, r, alone(r))),
    row('**= every module `serve` loaded, imported, nothing started** (fresh process)', imported),
    row('+ running: registry, policies, connectors, listeners, audit', running),
    row(`**= the gateway idle, after a full GC** (${b.idle.threads} threads)`, idle),
    '',
    `Each \`+\` row: what importing that group added in one fresh \`node --expose-gc --max-semi-space-size=1\` (after two full GCs each step; the young generation held small so its growth does not land on one row), in dependency order so a row holds its own code only; the last column imports the group alone in another fresh process (its own dependencies included, node itself subtracted; groups adding ≥ 2 MiB). ` +
      `A group is one of our dependencies with the packages only it pulls in (a package two of them share is a group of its own); the files are exactly the ${b.scripts.count} scripts (${fmt(b.scripts.chars / 1e6, 1)} M source characters) V8 compiled in the running gateway, Node's own modules counted where first used. ` +
      `"running" is the probed gateway (this section's command with \`--expose-gc\` and a bench preload, bench/procs/memory-probe.ts) after a full GC, minus the imports. ` +
      'Heap committed but free is V8 slack (mostly the young generation grown during start-up), which the memory reducer returns later: the steady row above is the figure to compare, not this one.',
  );
  // 2. The idle V8 heap: spaces, and what fills them.
  const spaces = b.idle.spaces.filter((s) => s.space_size > 0);
  out.push('', '| idle V8 heap (after a full GC) | committed MiB | used MiB |', '|---|---:|---:|');
  for (const s of spaces) out.push(`| ${s.space_name} | ${mib(s.space_size)} | ${mib(s.space_used_size)} |`);
  out.push(`| external (Buffers, ArrayBuffers, other C++ held by JS) | ${mib(b.idle.external)} | – |`);
  if (b.idleHeap) {
    const top = [...b.idleHeap.by].sort((x, y) => y[1].bytes - x[1].bytes).slice(0, 8);
    out.push('', '| idle heap by constructor (snapshot, self size) | objects | MiB | share |', '|---|---:|---:|---:|');
    for (const [what, r] of top) out.push(`| ${what} | ${r.count.toLocaleString('en-US')} | ${mib(r.bytes)} | ${fmt((r.bytes / b.idleHeap.total) * 100, 1)}% |`);
    out.push(`| **all** | – | **${mib(b.idleHeap.total)}** | 100% |`);
    out.push('', '`(string)` at idle is mostly module source V8 keeps for `Function.prototype.toString` and lazy compilation; `(compiled code)` is bytecode and its metadata.');
  }
  // 3. One open session.
  const per = (x: number, y: number) => (y - x) / m.sessions;
  out.push(
    '',
    `#### What one open session holds (${m.sessions} sessions, probed gateway, after a full GC)`,
    '',
    '| per session | KiB |',
    '|---|---:|',
    `| V8 heap used | ${kib(per(b.idle.heapUsed, b.open.heapUsed))} |`,
    `| external (Buffers, ArrayBuffers) | ${kib(per(b.idle.external, b.open.external))} |`,
    `| RSS steady, no forced GC (table above) | ${fmt(m.perSessionKiB, 1)} |`,
  );
  let topSessionRows: Array<{ what: string; bytes: number; count: number }> = [];
  if (b.sessions) {
    const rows = b.sessions.rows.filter((r) => r.bytes > 0);
    topSessionRows = rows.slice(0, 10);
    const restBytes = b.sessions.total - topSessionRows.reduce((n, r) => n + r.bytes, 0);
    out.push('', '| heap growth by constructor (snapshot diff, self size) | objects per session | KiB per session | share |', '|---|---:|---:|---:|');
    for (const r of topSessionRows) out.push(`| ${r.what.replaceAll('|', '\\|')} | ${fmt(r.count / m.sessions, 1)} | ${kib(r.bytes / m.sessions)} | ${fmt((r.bytes / b.sessions.total) * 100, 1)}% |`);
    out.push(`| the rest (net) | – | ${kib(restBytes / m.sessions)} | ${fmt((restBytes / b.sessions.total) * 100, 1)}% |`);
    out.push(`| **all** | – | **${kib(b.sessions.total / m.sessions)}** | 100% |`);
    const named = b.sessions.named.filter((r) => r.bytes > 0).slice(0, 6);
    out.push('', `Largest compiled code and closures added, by function name (KiB per session): ${named.map((r) => `${r.what.replaceAll('|', '\\|')} ${kib(r.bytes / m.sessions)} (${fmt(r.count / m.sessions, 1)})`).join('; ')}.`);
    out.push('', "Two `v8.writeHeapSnapshot()`s of the probed gateway, idle and with the sessions open, each after a full GC; self sizes summed by constructor as DevTools' Summary groups them (closures, arrays and V8 internals by kind), after minus before.");
  } else {
    out.push('', 'Heap snapshots skipped (`snapshots: false`).');
  }
  // 4. What would be needed.
  out.push('', ...needed(b, m, shown, topSessionRows));
  return out;
}

/** The closing sentences: each goal against what its largest rows hold. */
function needed(b: MemoryBreakdown, m: { sessions: number; idle: number; idleSteady: number; perSessionKiB: number }, shown: MemoryBreakdown['rows'], topSession: Array<{ what: string; bytes: number }>): string[] {
  const out: string[] = [];
  const excess = m.idleSteady - IDLE_GOAL_MIB;
  const floorMiB = b.floor.rss / MiB;
  const held = (r: MemoryBreakdown['rows'][number]) => (r.heapUsed + r.heapFree + r.offHeap) / MiB;
  const deps = b.rows.filter((r) => !r.label.startsWith('gateway code')).sort((x, y) => held(y) - held(x));
  const cover: typeof deps = [];
  for (const r of deps) {
    if (cover.reduce((n, c) => n + held(c), 0) >= excess) break;
    cover.push(r);
  }
  const ours = shown.find((r) => r.label.startsWith('gateway code'));
  const mcp = b.rows.filter((r) => r.label.includes('@modelcontextprotocol/'));
  const youngMiB = (b.idle.spaces.find((s) => s.space_name === 'new_space')?.space_size ?? 0) / MiB;
  const list = (rs: typeof deps) => rs.map((r) => `\`${r.label}\` ${fmt(held(r), 1)}`).join(', ');
  if (m.idleSteady >= m.idle - 0.5) out.push(`(The idle row did not fall within the steady window in this run: the memory reducer had not run, so the idle figure below still holds start-up garbage.)`, '');
  if (excess <= 0) {
    out.push(`**Idle goal (≤ 80 MB = ${fmt(IDLE_GOAL_MIB, 1)} MiB): met**, ${fmt(m.idleSteady, 1)} MiB steady.`);
  } else {
    out.push(
      `**Idle goal (≤ 80 MB = ${fmt(IDLE_GOAL_MIB, 1)} MiB): not met**, ${fmt(m.idleSteady, 1)} MiB steady, ${fmt(excess, 1)} MiB over. ` +
        `Node itself takes ${fmt(floorMiB, 1)} MiB, leaving ${fmt(IDLE_GOAL_MIB - floorMiB, 1)} MiB for the gateway; the modules \`serve\` loads add ${mib(b.imported.heapUsed - b.floor.heapUsed)} MiB of heap (source and bytecode) and ${mib(b.imported.rss - b.imported.heapTotal - (b.floor.rss - b.floor.heapTotal))} MiB outside it, our own code ${ours ? fmt(held(ours), 1) : '–'} MiB of that. ` +
        `The largest dependencies (RSS added, MiB): ${list(deps.slice(0, 5))}` +
        (mcp.length > 1 ? `; ${mcp.length} MCP SDK groups are loaded (${mcp.map((r) => `\`${r.label}\``).join(', ')}), ${fmt(mcp.reduce((n, r) => n + held(r), 0), 1)} MiB together` : '') +
        '. ' +
        (cover.reduce((n, c) => n + held(c), 0) >= excess
          ? `Not loading ${list(cover)} at start (imported on first use, or a lean path that does without) is what it takes to reach the goal; `
          : `Even without every dependency row above (${fmt(deps.reduce((n, r) => n + held(r), 0), 1)} MiB) it stays over: our own code and running state must shrink too; `) +
        `besides, a young generation capped small (its committed size at idle after start-up: ${fmt(youngMiB, 1)} MiB, e.g. \`--max-semi-space-size\`) keeps the 2-second figure near the steady one.`,
    );
  }
  const overKiB = m.perSessionKiB - SESSION_GOAL_KIB;
  const heapKiB = (b.open.heapUsed - b.idle.heapUsed) / 1024 / m.sessions;
  if (m.perSessionKiB < heapKiB) {
    out.push('', `**Per-session goal (≤ ${SESSION_GOAL_KIB} KiB): not judged in this run**: the steady RSS difference (${fmt(m.perSessionKiB, 1)} KiB) is below the heap growth alone (${fmt(heapKiB, 1)} KiB after a full GC), so V8's memory reducer did not settle both rows within the window.`);
  } else if (overKiB <= 0) {
    out.push('', `**Per-session goal (≤ ${SESSION_GOAL_KIB} KiB): met**, ${fmt(m.perSessionKiB, 1)} KiB.`);
  } else {
    const top3 = topSession.slice(0, 3);
    out.push(
      '',
      `**Per-session goal (≤ ${SESSION_GOAL_KIB} KiB): not met**, ${fmt(m.perSessionKiB, 1)} KiB of RSS per session (steady), of which the V8 heap holds ${fmt(heapKiB, 1)} KiB after a full GC` +
        (b.sessions && top3.length > 0
          ? `; its largest rows, ${top3.map((r) => `${r.what} ${kib(r.bytes / m.sessions)}`).join(', ')} KiB, hold ${kib(top3.reduce((n, r) => n + r.bytes, 0) / m.sessions)} of the ${kib(b.sessions.total / m.sessions)} KiB the snapshots show. `
          : '. ') +
        `Reaching ${SESSION_GOAL_KIB} KiB needs ${fmt(overKiB, 1)} KiB less per session: fewer objects built per session (a session that shares one server, its handlers and schemas with the others instead of building its own) rather than smaller ones.`,
    );
  }
  return out;
}
