/**
 * Where `audit verify`'s time goes (issue #21: a goal not met shows its
 * profile and what would be needed): one verify run under `node --cpu-prof`
 * in a child process, the main thread's and every worker's profile summed
 * per record into readable rows, and a sentence that sets the measured time
 * against the goal.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { breakdown, breakdownTable, type Breakdown } from './lib/profile.js';

/** Issue #21: `audit verify` of 1 M records in at most 3 s, using every core. */
export const VERIFY_GOAL = { records: 1_000_000, seconds: 3 };

/** profile.ts buckets → what verify does there; first match wins. */
const START_UP = 'start-up: loading modules (main thread and each worker)';
const REPLAY = 'chain replay: seq, prev, checkpoints (main thread, verify.ts)';
const ROWS: [RegExp, string][] = [
  [/^ours audit\/line-scan$/, 'JSON check of each line (line-scan.ts, bytes only)'],
  [/^node crypto\/(hash|util)$/, 'SHA-256 of each record (crypto.hash)'],
  [/^ours audit\/line-check$/, 'hash comparison; JSON.parse of lines left to checkLine (checkpoints)'],
  [/^ours audit\/canonical$/, 'canonicalisation (RFC 8785; lines not in canonical byte order)'],
  [/^(ours audit\/verify-range|node buffer|\(native\)|native (read|open|openFileHandle|close|fstat|latin1Slice|utf8Slice|compareOffset)|node fs(\/.*)?)$/, 'read and split lines, result arrays (verify-range.ts, Buffer)'],
  [/^(pkg jose|node crypto\/.*|ours audit\/checkpoint)$/, 'checkpoint signatures (Ed25519: jose, WebCrypto)'],
  [/^ours audit\/(verify|files|calls)$/, REPLAY],
  [/^(native postMessage|node worker(\/.*)?|node per_context\/messageport|node event_target|ours audit\/(pool|scan-worker))$/, 'worker threads: jobs and results (messages, transfers)'],
  [/^\(garbage collector\)$/, 'garbage collection'],
  [/^(node (modules|bootstrap|process|main)\/.*|node (url|vm|path|realm)|native (ModuleWrap|compileFunction|internalModuleStat|readFileUtf8))$/, START_UP],
];

function rowOf(bucket: string): string {
  for (const [re, row] of ROWS) if (re.test(bucket)) return row;
  return 'other (V8, Node internals)';
}

export interface VerifyProfile {
  records: number;
  ok: boolean;
  /** Wall time and CPU time (all threads, thread pool included) of the profiled run. */
  ms: number;
  cpuMs: number;
  /** Busy µs per record of each thread, main thread first, and of that the chain replay (main thread). */
  threads: { main: boolean; busyUs: number; replayUs: number }[];
  /** All threads summed, per record. */
  summed: Breakdown;
}

function sum(bs: Breakdown[]): Breakdown {
  const by = new Map<string, number>();
  let busyUs = 0;
  for (const b of bs) {
    busyUs += b.busyUs;
    for (const r of b.rows) by.set(r.what, (by.get(r.what) ?? 0) + r.us);
  }
  const rows = [...by].map(([what, us]) => ({ what, us, share: busyUs > 0 ? us / busyUs : 0 })).sort((a, b) => b.us - a.us);
  return { busyUs, rows };
}

/** Runs verify over `dir` once under --cpu-prof (default threads: one worker per core). */
export async function profileVerify(dir: string, keyFile: string): Promise<VerifyProfile> {
  const profDir = mkdtempSync(join(tmpdir(), 'gh-bench-verify-prof-'));
  try {
    const child = fileURLToPath(new URL('./audit-verify-child.js', import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, ['--cpu-prof', '--cpu-prof-dir', profDir, child, dir, keyFile], { maxBuffer: 1 << 20 });
    const run = JSON.parse(stdout) as { records: number; ok: boolean; ms: number; cpuMs: number };
    // CPU.<date>.<time>.<pid>.<thread id>.<n>.cpuprofile: thread 0 is the main thread.
    const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
    const per = files
      .map((f) => ({ main: f.split('.')[4] === '0', b: breakdown(join(profDir, f), run.records, rowOf) }))
      .sort((a, b) => Number(b.main) - Number(a.main));
    if (!per[0]?.main) throw new Error(`no main-thread profile among ${files.join(', ')}`);
    const threads = per.map((p) => ({ main: p.main, busyUs: p.b.busyUs, replayUs: p.b.rows.find((r) => r.what === REPLAY)?.us ?? 0 }));
    return { ...run, threads, summed: sum(per.map((p) => p.b)) };
  } finally {
    rmSync(profDir, { recursive: true, force: true });
  }
}

export interface VerifyMeasured {
  records: number;
  /** Unprofiled runs: default threads, and one thread. */
  ms: number;
  workers: number;
  oneThreadMs: number;
  cores: number;
}

const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);

/** The breakdown table, the threads' busy time, and the goal against the measured time with what would be needed. */
export function verifyProfileMarkdown(p: VerifyProfile, m: VerifyMeasured): string {
  const { records: goalN, seconds: goalS } = VERIFY_GOAL;
  const scale = goalN / m.records;
  const projected = (m.ms / 1000) * scale;
  // µs per record on one thread = seconds per million records on one thread.
  const perThreadUs = ((m.oneThreadMs / 1000) * 1e6) / m.records;
  const perThreadGoal = perThreadUs * (goalN / 1e6);
  // What does not split across workers: the main thread's chain replay.
  const serialUs = p.threads.find((t) => t.main)?.replayUs ?? 0;
  const serialGoal = serialUs * (goalN / 1e6);
  const busy = p.threads.map((t, i) => `${t.main ? 'main' : `worker ${i}`} ${f2(t.busyUs)}`).join(', ');
  const lines = [
    `Where verify's time goes: one run of ${m.records.toLocaleString('en-US')} records under \`node --cpu-prof\` (${f2(p.ms / 1000)} s, ok=${p.ok}), the main thread's and each worker's profile summed, µs per record:`,
    '',
    breakdownTable(p.summed, 10, 'record'),
    '',
    `Busy µs per record by thread: ${busy}. Sampled time is time a thread was not idle, waiting for a core included (${m.workers} workers and the main thread share ${m.cores} cores); reads run in libuv's thread pool, outside the profiles. CPU time of the whole run: ${f2(p.cpuMs / 1000)} s (${f2((p.cpuMs * 1000) / p.records)} µs per record).`,
    '',
  ];
  // A quick run is too short to project: starting the workers weighs as much as the records.
  const small = m.records < goalN / 2 ? ` (projected linearly from a run of ${m.records.toLocaleString('en-US')} records, where starting the workers weighs as much as the records: indicative only; the full bench runs ${goalN.toLocaleString('en-US')})` : '';
  const head = `Goal (#21): verify ${goalN.toLocaleString('en-US')} records in ≤ ${goalS} s using every core. Measured ${f2(m.ms / 1000)} s for ${m.records.toLocaleString('en-US')} records with ${m.workers} worker threads, ${f2(projected)} s per ${goalN.toLocaleString('en-US')}${small}; one thread: ${f2(perThreadUs)} µs per record (${f2(perThreadGoal)} s per ${goalN.toLocaleString('en-US')}), of which the main thread's chain replay, which does not split across workers, takes about ${f2(serialUs)} µs.`;
  if (projected <= goalS) {
    lines.push(`${head} **Met** on this ${m.cores}-core machine.`);
    return lines.join('\n');
  }
  const parallelGoal = perThreadGoal - serialGoal;
  const needed = serialGoal < goalS ? `${Math.ceil(parallelGoal / (goalS - serialGoal))} threads` : `a faster chain replay first (it alone takes ${f1(serialGoal)} s)`;
  // Time scales with the work per record: this machine meets the goal when that work shrinks by goalS / projected.
  const cutUs = perThreadUs * (1 - goalS / projected);
  // The largest per-record row (start-up is not), in one-thread terms: its share of the busy time applied to one thread's cost.
  const top = p.summed.rows.find((r) => r.what !== START_UP);
  const topUs = (top?.share ?? 0) * perThreadUs;
  const which =
    top === undefined
      ? ''
      : cutUs <= topUs
        ? ` — e.g. the largest row, ${top.what} (about ${f2(topUs)} µs per record on one thread), shrinking by ${f2(cutUs)} µs`
        : ` — more than the largest row (${top.what}, about ${f2(topUs)} µs) holds: several rows, or more cores`;
  lines.push(
    `${head} **Missed.** At ${f2(perThreadUs)} µs per record per thread, ${goalN.toLocaleString('en-US')} records need ${needed} for ${goalS} s; this machine has ${m.cores} cores. To meet it here the work per record would have to fall from ${f2(perThreadUs)} to ${f2(perThreadUs - cutUs)} µs${which}.`,
  );
  return lines.join('\n');
}
