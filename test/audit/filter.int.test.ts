/** The one audit filter parser: `gatehouse logs` flags and the admin API's query parameters accept and refuse the same values. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DECISIONS, EVENTS, OUTCOMES, parseAuditFilters } from '../../src/audit/filter.js';
import { auditRoutes, filtersFromParams } from '../../src/audit/http.js';
import { tempState } from './helpers.js';

const SRC_DIR = join(import.meta.dirname, '../../src');

const now = new Date('2026-01-02T12:00:00Z');

describe('parseAuditFilters', () => {
  it('the lists it checks against are not empty', () => {
    expect(DECISIONS.length).toBeGreaterThan(0);
    expect(OUTCOMES.length).toBeGreaterThan(0);
    expect(EVENTS).toContain('tools/call');
    expect(EVENTS).toContain('model.call');
  });

  it('reads every key: times relative to now (one duration grammar) or ISO, the rest as given', () => {
    const f = parseAuditFilters(
      { since: '1h30m', until: '2026-01-02T11:59:00Z', agent: 'a', session: 's', connector: 'c', tool: 'gh__*', decision: 'deny', outcome: 'unknown', event: 'model.*', grep: 'x' },
      { now },
    );
    expect(f).toEqual({
      since: new Date('2026-01-02T10:30:00Z'),
      until: new Date('2026-01-02T11:59:00Z'),
      agent: 'a',
      session: 's',
      connector: 'c',
      tool: 'gh__*',
      decision: 'deny',
      outcome: 'unknown',
      event: 'model.*',
      grep: 'x',
    });
  });

  it.each([
    ['outcome', 'sucess', /outcome: unknown value "sucess"; use one of: ok, error, denied, timeout, rejected, cancelled, pending, unknown/],
    ['decision', 'maybe', /decision: unknown value "maybe"; use one of: allow, deny, ask/],
    ['event', 'tool/call', /event: no audit event is named "tool\/call"; events: .*tools\/call/],
    ['event', 'nothing.*', /event: no audit event is matched by "nothing\.\*"/],
    ['since', '90', /since: invalid duration "90"; a bare number has no unit: write 90s, 90m or 90h/],
    ['until', 'yesterday', /until: invalid time "yesterday"/],
  ] as const)('an unknown %s value (%s) is an error naming the allowed values', (key, value, message) => {
    expect(() => parseAuditFilters({ [key]: value }, { now })).toThrow(message);
    // The caller names the key its own way: a flag on the command line.
    expect(() => parseAuditFilters({ [key]: value }, { now, name: (k) => `--${k}` })).toThrow(new RegExp(`^--${key}: `));
  });

  it('a time range that ends before it starts is an error, not an empty result', () => {
    expect(() => parseAuditFilters({ since: '1h', until: '2h' }, { now })).toThrow(/since .* must be before until/);
  });
});

describe('every event the gateway writes can be asked for', () => {
  it('each `event: \'…\'` record literal in src/ (the CLI\'s own output and the console\'s server-sent events aside) is a known event, so `logs --event X` is never refused for a real one', () => {
    const files = (readdirSync(SRC_DIR, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.startsWith('cli/'));
    const written = new Set<string>();
    // A server-sent event's name (writeSSE, the console's #publish and its type) is not an audit record.
    const sseFrame = /writeSSE\(|#publish\(|^\s*\| \{ event:/;
    for (const f of files) {
      for (const line of readFileSync(join(SRC_DIR, f), 'utf8').split('\n')) {
        if (sseFrame.test(line)) continue;
        for (const m of line.matchAll(/event: '([a-zA-Z/._-]+)'/g)) written.add(m[1]!);
      }
    }
    expect(written.size).toBeGreaterThan(20);
    expect([...written].filter((e) => !EVENTS.includes(e))).toEqual([]);
  });
});

describe('a malformed glob in --tool or --event', () => {
  it.each([
    ['tool', '{github__*,slack__*'],
    ['tool', 'github__[z-a]'],
    ['event', 'tools/{call'],
  ] as const)('--%s %s is refused, not a filter that silently matches nothing', (key, glob) => {
    expect(() => parseAuditFilters({ [key]: glob }, { name: (k) => `--${k}` })).toThrow(new RegExp(`--${key}: .* is not a valid glob`));
  });

  it('a well-formed glob still filters', () => {
    expect(parseAuditFilters({ tool: '{github,slack}__*' }).tool).toBe('{github,slack}__*');
  });
});

describe('the admin API uses the same parser', () => {
  it('outcome=sucess: 400 USAGE naming the allowed values (it was not checked on the command line before)', async () => {
    expect(() => filtersFromParams(new URLSearchParams('outcome=sucess'))).toThrow(/use one of: ok, error/);
    const { dir } = tempState();
    const res = await auditRoutes(dir).request('/?event=nope');
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('USAGE');
    expect(body.error.message).toMatch(/^event: no audit event is named "nope"/);
  });
});
