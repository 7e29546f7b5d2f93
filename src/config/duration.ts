/**
 * The one duration grammar of Gatehouse ("5m", "1h30m", "250ms", "7d") and
 * rates ("20/hour"): policy and registry files, token TTLs, `logs --since`,
 * `serve --session-idle` all read durations here.
 */
import { z } from 'zod';
import { GatehouseError, type ErrorCode } from '../errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PER_MS: Record<string, number> = { second: 1_000, minute: 60_000, hour: 3_600_000, day: 86_400_000 };

const DURATION = /^(?:\d+(?:ms|s|m|h|d))+$/;
const PART = /(\d+)(ms|s|m|h|d)/g;

/** Parses "5m", "1h30m", "90s", "250ms". Returns undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (!DURATION.test(s)) return undefined;
  let ms = 0;
  for (const m of s.matchAll(PART)) ms += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? NaN);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/**
 * Parses a duration or throws a GatehouseError (USAGE by default, CONFIG_INVALID for files) naming `what`.
 * A bare number is refused with a hint instead of silently meaning milliseconds.
 */
export function requireDuration(text: string, what: string, code: ErrorCode = 'USAGE'): number {
  const ms = parseDuration(text);
  if (ms !== undefined) return ms;
  throw new GatehouseError(code, `${what}: ${durationProblem(text)}`);
}

/** What is wrong with a value that is not a duration, and how to write it. */
function durationProblem(value: string | number): string {
  const text = String(value).trim();
  const hint = /^\d+$/.test(text)
    ? `a bare number has no unit: write ${text}s, ${text}m or ${text}h`
    : 'use a duration like 250ms, 30s, 5m, 1h30m or 7d';
  return `invalid duration ${JSON.stringify(value)}; ${hint}`;
}

/**
 * A duration field of a config file, as milliseconds. A YAML number is
 * refused with the hint (it used to mean milliseconds); `range` bounds it.
 */
export function durationField(range?: { min?: number; max?: number }) {
  return z.union([z.string(), z.number()]).transform((v, ctx) => {
    const ms = typeof v === 'string' ? parseDuration(v) : undefined;
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: durationProblem(v) });
      return z.NEVER;
    }
    const min = range?.min ?? 1;
    const max = range?.max ?? Number.MAX_SAFE_INTEGER;
    if (ms < min || ms > max) {
      const bounds = range?.max === undefined ? `at least ${formatDuration(min)}` : `between ${formatDuration(min)} and ${formatDuration(max)}`;
      ctx.addIssue({ code: 'custom', message: `must be ${bounds}` });
      return z.NEVER;
    }
    return ms;
  });
}

/** Parses "20/hour" (also /second, /minute, /day). Returns undefined when malformed. */
export function parseRate(text: string): { capacity: number; perMs: number } | undefined {
  const m = /^\s*(\d+)\s*\/\s*(second|minute|hour|day)\s*$/.exec(text);
  if (!m) return undefined;
  const capacity = Number(m[1]);
  const perMs = PER_MS[m[2] ?? ''];
  if (perMs === undefined || !Number.isSafeInteger(capacity) || capacity < 1) return undefined;
  return { capacity, perMs };
}

/** "3600000" → "1h", "90000" → "1m30s": the short form used in tables. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  let rest = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, secs] of [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]] as const) {
    const n = Math.floor(rest / secs);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * secs;
  }
  return parts.join('') || '0s';
}
