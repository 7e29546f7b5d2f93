import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/load-yaml.js';
import { evaluate } from '../../src/policy/evaluate.js';
import { loadPolicies } from '../../src/policy/load.js';
import { PolicyStore, type PolicyChange } from '../../src/policy/store.js';
import { call, tmpDir, writeFiles } from './helpers.js';

const allowGithub = 'version: 1\nrules:\n  - id: gh\n    match: { tool: "github__*" }\n    effect: allow\n';
const denyGithub = 'version: 1\nrules:\n  - id: gh\n    match: { tool: "github__*" }\n    effect: deny\n';

const stores: PolicyStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

function open(dir: string, opts: { debounceMs?: number; load?: (dir: string) => ReturnType<typeof loadPolicies> } = {}): PolicyStore {
  const s = new PolicyStore(dir, { debounceMs: 30, ...opts });
  stores.push(s);
  return s;
}

/** A loader that counts its calls: a reload is the event that proves the store looked at a write. */
function countingLoader() {
  let wake: () => void = () => undefined;
  const counter = {
    loads: 0,
    load: (dir: string) => {
      counter.loads++;
      wake();
      return loadPolicies(dir);
    },
    /** Resolves at the next load (the timeout is a hang guard only). */
    nextLoad: (timeoutMs = 15_000) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('the store did not reload')), timeoutMs);
        wake = () => {
          clearTimeout(t);
          wake = () => undefined;
          resolve();
        };
      }),
  };
  return counter;
}

/** The next change event; the timeout is a hang guard only (generous: the machine may be loaded). */
function nextChange(store: PolicyStore, timeoutMs = 15_000): Promise<PolicyChange> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error('no policy change event'));
    }, timeoutMs);
    const off = store.watch((ev) => {
      clearTimeout(t);
      off();
      resolve(ev);
    });
  });
}

describe('PolicyStore (hot reload)', () => {
  it('refuses to start on an invalid policy (no gateway without a policy)', () => {
    const dir = tmpDir({ 'p.yaml': 'version: 1\nrules:\n  - id: x\n    effect: nope\n' });
    expect(() => new PolicyStore(dir)).toThrow(ConfigError);
  });

  it('reload swaps in a valid new policy', () => {
    const dir = tmpDir({ 'p.yaml': allowGithub });
    const store = open(dir);
    expect(evaluate(store.current(), call()).effect).toBe('allow');
    writeFiles(dir, { 'p.yaml': denyGithub });
    expect(store.reload()).toEqual({ ok: true, changed: true });
    expect(evaluate(store.current(), call()).effect).toBe('deny');
  });

  it('reload of an invalid set keeps the old policy in force and returns the error', () => {
    const dir = tmpDir({ 'p.yaml': allowGithub });
    const store = open(dir);
    const before = store.current();
    writeFiles(dir, { 'q.yaml': 'version: 1\nrules:\n  - id: gh\n    effect: deny\n' }); // duplicate id across files
    const r = store.reload();
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toMatch(/q\.yaml:3:\d+: rules\[0\]\.id: duplicate rule id "gh"/);
    expect(store.current()).toBe(before);
  });

  it('a file change is picked up by the watcher and the new policy is in force', async () => {
    const dir = tmpDir({ 'p.yaml': allowGithub });
    const store = open(dir);
    const change = nextChange(store);
    writeFiles(dir, { 'p.yaml': denyGithub });
    const ev = await change;
    expect(ev.ok).toBe(true);
    expect(ev.files).toEqual([`${store.dir}/p.yaml`]);
    expect(ev.changed.some((f) => f.endsWith('p.yaml'))).toBe(true);
    expect(evaluate(store.current(), call()).effect).toBe('deny');
  });

  it('an invalid file change keeps the old policy in force and reports the error', async () => {
    const dir = tmpDir({ 'p.yaml': allowGithub });
    const store = open(dir);
    const change = nextChange(store);
    writeFiles(dir, { 'p.yaml': 'version: 1\nrules:\n  - id: gh\n    efect: deny\n' });
    const ev = await change;
    expect(ev.ok).toBe(false);
    expect(ev.error).toMatch(/p\.yaml:4:\d+: rules\[0\]\.efect: unknown key/);
    expect(evaluate(store.current(), call()).effect).toBe('allow');
    // Fixing the file brings the new policy in.
    const fixed = nextChange(store);
    writeFiles(dir, { 'p.yaml': denyGithub });
    expect((await fixed).ok).toBe(true);
    expect(evaluate(store.current(), call()).effect).toBe('deny');
  });

  it('a change to an extended preset is picked up too', async () => {
    const dir = tmpDir({ 'default.yaml': 'version: 1\nextends: [presets/base]\n', 'presets/base.yaml': allowGithub });
    const store = open(dir);
    const change = nextChange(store);
    writeFiles(dir, { 'presets/base.yaml': denyGithub });
    expect((await change).ok).toBe(true);
    expect(evaluate(store.current(), call()).effect).toBe('deny');
  });

  it('a write that does not change the policy text raises no event and keeps the same object', async () => {
    const dir = tmpDir({ 'p.yaml': allowGithub });
    const counter = countingLoader();
    const store = open(dir, { load: counter.load });
    const before = store.current();
    const seen: PolicyChange[] = [];
    store.watch((ev) => seen.push(ev));
    const reloaded = counter.nextLoad();
    writeFiles(dir, { 'p.yaml': allowGithub });
    // The store reloaded after the write, and raises its events in that same reload: no wait for a non-event.
    await reloaded;
    expect(seen).toEqual([]);
    expect(store.current()).toBe(before);
  });

  it('close stops watching', async () => {
    const dir = tmpDir({ 'p.yaml': allowGithub });
    const counter = countingLoader();
    const store = open(dir, { load: counter.load });
    const seen: PolicyChange[] = [];
    store.watch((ev) => seen.push(ev));
    store.close();
    // A witness on the same folder with a longer debounce: when it hears the change, the closed
    // store (same events, shorter debounce, same event loop) would have reloaded already.
    const witness = nextChange(open(dir, { debounceMs: 300 }));
    const loadsBefore = counter.loads;
    writeFiles(dir, { 'p.yaml': denyGithub });
    expect((await witness).ok).toBe(true);
    expect(counter.loads).toBe(loadsBefore);
    expect(seen).toEqual([]);
    expect(evaluate(store.current(), call()).effect).toBe('allow');
  });
});
