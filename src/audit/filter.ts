/**
 * The one parser of audit filters: `gatehouse logs` flags and the admin
 * API's query parameters both come here, so both accept and refuse the same
 * values. An unknown decision, outcome or event is an error naming the
 * allowed values (a typo would otherwise match nothing and look like "no records").
 */
import picomatch from 'picomatch';
import { globProblem } from '../config/glob.js';
import { requireDuration } from '../config/duration.js';
import { GatehouseError, errorMessage } from '../errors.js';
import { parseTime, type AuditFilters } from './query.js';
import { AUDIT_EVENTS } from './types.js';

export const FILTER_KEYS = ['since', 'until', 'agent', 'session', 'connector', 'tool', 'decision', 'outcome', 'event', 'grep'] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];

export const DECISIONS = ['allow', 'deny', 'ask'] as const;
/** Recorded outcomes, and `pending` / `unknown`: forwarded calls with an intent and no outcome (in flight / gateway stopped). */
export const OUTCOMES = ['ok', 'error', 'denied', 'timeout', 'rejected', 'cancelled', 'pending', 'unknown'] as const;
/** Every event the gateway writes: AUDIT_EVENTS and the model-provider records. */
export const EVENTS: readonly string[] = [...AUDIT_EVENTS, 'model.call.intent', 'model.call'];

const GLOB = /[*?[\]{}!]/;

export interface FilterParseOptions {
  /** "now" for relative times (`1h` = one hour before it). */
  now?: Date;
  /** How the caller spells a key in messages: `--outcome` on the command line, `outcome` in a URL. */
  name?: (key: FilterKey) => string;
}

function oneOf(what: string, value: string, allowed: readonly string[]): string {
  if (allowed.includes(value)) return value;
  throw new GatehouseError('USAGE', `${what}: unknown value ${JSON.stringify(value)}; use one of: ${allowed.join(', ')}`);
}

/** An event name, or a glob ("model.*") that matches at least one event the gateway writes. */
function eventFilter(what: string, value: string): string {
  const glob = GLOB.test(value);
  const matches = glob ? picomatch(value, { dot: true }) : undefined;
  const known = matches ? EVENTS.some((e) => matches(e)) : EVENTS.includes(value);
  if (known) return value;
  throw new GatehouseError('USAGE', `${what}: no audit event is ${glob ? 'matched by' : 'named'} ${JSON.stringify(value)}; events: ${EVENTS.join(', ')} (a glob like "model.*" works too)`);
}

/** Text values as given → checked filters. Throws GatehouseError('USAGE') naming the flag or parameter. */
export function parseAuditFilters(raw: Partial<Record<FilterKey, string | undefined>>, opts: FilterParseOptions = {}): AuditFilters {
  const name = opts.name ?? ((k: FilterKey) => k);
  const now = opts.now ?? new Date();
  const f: AuditFilters = {};
  for (const k of ['agent', 'session', 'connector', 'tool', 'grep'] as const) {
    const v = raw[k];
    if (v !== undefined) f[k] = v;
  }
  // A malformed glob would silently match nothing: refused, as in policy and registry files.
  for (const [k, v] of [['tool', raw.tool], ['event', raw.event]] as const) {
    const problem = v !== undefined ? globProblem(v) : undefined;
    if (problem !== undefined) throw new GatehouseError('USAGE', `${name(k)}: ${JSON.stringify(v)} is not a valid glob: ${problem}`);
  }
  if (raw.decision !== undefined) f.decision = oneOf(name('decision'), raw.decision, DECISIONS);
  if (raw.outcome !== undefined) f.outcome = oneOf(name('outcome'), raw.outcome, OUTCOMES);
  if (raw.event !== undefined) f.event = eventFilter(name('event'), raw.event);
  const time = (k: 'since' | 'until', v: string): Date => {
    // A bare number gets the duration grammar's hint (write 90s, 90m or 90h), as every duration flag does.
    if (/^\s*\d+\s*$/.test(v)) requireDuration(v, name(k));
    try {
      return parseTime(v, now);
    } catch (e) {
      throw new GatehouseError('USAGE', `${name(k)}: ${errorMessage(e)}`);
    }
  };
  if (raw.since !== undefined) f.since = time('since', raw.since);
  if (raw.until !== undefined) f.until = time('until', raw.until);
  if (f.since !== undefined && f.until !== undefined && f.since >= f.until) {
    throw new GatehouseError('USAGE', `${name('since')} (${f.since.toISOString()}) must be before ${name('until')} (${f.until.toISOString()})`);
  }
  return f;
}
