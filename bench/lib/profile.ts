/**
 * Where the time goes: a V8 `.cpuprofile` (node --cpu-prof) summed by what
 * spent it — an npm package, a Node module, one of our source files, the
 * garbage collector — per unit of work (a call, a record). Issue #21: a goal
 * that is not met shows its profile in bench/RESULTS.md.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  /** What spent it: `pkg <name>`, `node <module>`, `ours <room/file>`, or a V8 bucket (GC, program, native). */
  what: string;
  /** Microseconds per unit. */
  us: number;
  /** Share of the busy (non-idle) time. */
  share: number;
}

export interface Breakdown {
  /** Busy (non-idle) microseconds per unit. */
  busyUs: number;
  rows: ProfileRow[];
}

/** The one `.cpuprofile` node wrote into `dir` (--cpu-prof-dir). */
export function profileIn(dir: string): string {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length !== 1) throw new Error(`expected one .cpuprofile in ${dir}, found ${files.length}`);
  return join(dir, files[0]!);
}

/** The bucket a frame's self time goes to. */
export function bucketOf(url: string, functionName: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + 'node_modules/'.length).split('/');
    return `pkg ${parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  if (url.startsWith('node:')) return `node ${url.slice(5).replace(/^internal\//, '')}`;
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return `ours ${url.slice(dist + '/dist/'.length).replace(/^src\//, '').replace(/\.js$/, '')}`;
  if (url === '') return functionName === '' ? '(native)' : functionName.startsWith('(') ? functionName : `native ${functionName}`;
  return url;
}

/**
 * Self time per bucket, per unit, largest first; `merge` renames buckets
 * (e.g. every `node internal/webstreams/*` into one "Web streams" row).
 */
export function breakdown(file: string, units: number, merge: (bucket: string) => string = (b) => b): Breakdown {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const by = new Map<string, number>();
  let busy = 0;
  for (const n of p.nodes) {
    const t = self.get(n.id) ?? 0;
    if (t === 0) continue;
    const b = bucketOf(n.callFrame.url, n.callFrame.functionName);
    if (b === '(idle)') continue;
    busy += t;
    const m = merge(b);
    by.set(m, (by.get(m) ?? 0) + t);
  }
  const rows = [...by].map(([what, t]) => ({ what, us: t / units, share: busy > 0 ? t / busy : 0 })).sort((a, b) => b.us - a.us);
  return { busyUs: busy / units, rows };
}

/** The largest `top` rows as a markdown table (the rest summed in one row). */
export function breakdownTable(b: Breakdown, top: number, unit = 'call'): string {
  const shown = b.rows.slice(0, top);
  const rest = b.rows.slice(top);
  const restUs = rest.reduce((s, r) => s + r.us, 0);
  const lines = [`| spent in | µs per ${unit} | share |`, '|---|---:|---:|'];
  for (const r of shown) lines.push(`| ${r.what} | ${r.us.toFixed(1)} | ${(r.share * 100).toFixed(1)}% |`);
  if (rest.length > 0) lines.push(`| ${rest.length} others | ${restUs.toFixed(1)} | ${((restUs / Math.max(1e-9, b.busyUs)) * 100).toFixed(1)}% |`);
  lines.push(`| **busy (sampled)** | **${b.busyUs.toFixed(1)}** | 100% |`);
  return lines.join('\n');
}
