/** Small statistics and table helpers shared by the bench sections. Prints; never asserts. */
import { cpus, loadavg } from 'node:os';

export function sorted(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** The q-quantile (nearest rank) of the samples; NaN when there are none. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = sorted(xs);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? Number.NaN;
}

export const median = (xs: readonly number[]): number => quantile(xs, 0.5);

export function fmt(n: number, digits = 2): string {
  if (!Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
}

/** "1.00×" style ratio. */
export function ratio(n: number, base: number): string {
  return Number.isFinite(n) && Number.isFinite(base) && base !== 0 ? `${(n / base).toFixed(2)}×` : '–';
}

/** The line printed under every table: what ran it, and how busy the machine was. */
export function machineLine(): string {
  const c = cpus();
  const model = (c[0]?.model ?? 'unknown CPU').trim().replace(/\s+/g, ' ');
  const [l1, l5] = loadavg();
  return `Machine: ${c.length} cores, ${model}, Node ${process.version}, load average at start ${fmt(l1 ?? 0)} / ${fmt(l5 ?? 0)} (1 / 5 min).`;
}

/** Each round visits the targets in a rotated order, so no target always goes first (or last). */
export function rotated<T>(items: readonly T[], round: number): T[] {
  const k = round % Math.max(1, items.length);
  return [...items.slice(k), ...items.slice(0, k)];
}

export function goal(met: boolean | undefined): string {
  return met === undefined ? 'n/a' : met ? 'met' : '**missed**';
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
