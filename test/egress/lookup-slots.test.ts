/**
 * Lookups that never answer must not take every thread of libuv's pool, which
 * the audit writer's file operations share (review F7): at most two run at
 * once, the rest wait within the resolve timeout, and a slot is given back
 * only when its lookup itself settles.
 */
import { describe, expect, it } from 'vitest';
import type { AuditEvent, AuditSink } from '../../src/audit/types.js';
import { gate, type GateDeps } from '../../src/egress/gate.js';
import { LookupSlots } from '../../src/egress/lookup-slots.js';
import { silentLogger } from '../../src/log.js';
import { loadPolicyFiles, memorySource } from '../../src/policy/load.js';

const policy = loadPolicyFiles(['/p/e.yaml'], memorySource({ '/p/e.yaml': 'version: 1\nrules:\n  - id: any\n    match: { agent: a, egress: { host: "*", port: 443 } }\n    effect: allow\n' }));

describe('egress name lookups', () => {
  it('names_that_never_resolve_hold_at_most_two_lookups_and_time_out_with_504', async () => {
    const records: AuditEvent[] = [];
    const audit: AuditSink = { append: async (e) => void records.push(e), assertWritable: () => undefined, close: async () => undefined };
    let running = 0;
    let most = 0;
    const hang = new Set<string>();
    const deps: GateDeps = {
      policy: () => policy,
      audit,
      logger: silentLogger,
      // Hangs for "*.hang" names (a DNS server that never answers), answers others at once.
      resolve: (host) => {
        running++;
        most = Math.max(most, running);
        if (host.endsWith('.hang')) {
          hang.add(host);
          return new Promise(() => undefined);
        }
        running--;
        return Promise.resolve(['93.184.215.14']);
      },
      resolveTimeoutMs: 300,
      lookups: new LookupSlots(2),
      now: Date.now,
    };
    const who = { caller: { kind: 'agent' as const, name: 'a' } };
    const verdicts = await Promise.all(Array.from({ length: 10 }, (_, i) => gate(deps, who, { host: `n${i}.hang`, port: 443, literal: false })));
    expect(verdicts.every((v) => !v.go && v.status === 504)).toBe(true);
    expect(most).toBe(2);
    expect(hang.size).toBe(2);
    // Both slots are still held by the lookups that never settled: a good name now waits and times out too (fail closed, no third thread).
    const good = await gate(deps, who, { host: 'ok.example', port: 443, literal: false });
    expect(good).toMatchObject({ go: false, status: 504 });
  });

  it('a_slot_is_given_back_when_its_lookup_settles', async () => {
    const slots = new LookupSlots(1);
    const release = await slots.acquire();
    let second = false;
    const waiting = slots.acquire().then((r) => {
      second = true;
      return r;
    });
    await new Promise((r) => setImmediate(r));
    expect(second).toBe(false);
    release();
    release(); // twice is once
    (await waiting)();
    expect(second).toBe(true);
    // Free again: two releases did not make two slots.
    const a = await slots.acquire();
    let third = false;
    void slots.acquire().then(() => (third = true));
    await new Promise((r) => setImmediate(r));
    expect(third).toBe(false);
    a();
  });
});
