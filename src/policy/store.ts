/**
 * The policy in force, with hot reload. A reload validates the whole new set
 * of files and swaps it in as one object; an invalid set keeps the old policy
 * in force (fail closed to the last good policy, never to "no policy").
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from '../config/load-yaml.js';
import { GatehouseError } from '../errors.js';
import { loadPolicies } from './load.js';
import type { Policy } from './types.js';

export interface PolicyChange {
  /** true: a new policy is in force; false: the change was invalid and the old policy stays. */
  ok: boolean;
  /** The ConfigError message (file:line:col: key: problem), when not ok. */
  error?: string;
  /** The policy files in force after the change. */
  files: string[];
  /** The files whose change triggered this reload. */
  changed: string[];
  /** Digest of the policy in force. */
  digest: string;
}

export interface PolicyStoreOptions {
  /** Quiet time after the last file event before reloading (editors write in several steps). */
  debounceMs?: number;
  /** For tests: the loader. */
  load?: (dir: string) => Policy;
}

export class PolicyStore {
  readonly dir: string;
  #policy: Policy;
  readonly #load: (dir: string) => Policy;
  readonly #debounceMs: number;
  readonly #listeners = new Set<(ev: PolicyChange) => void>();
  #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;
  #changed = new Set<string>();
  #closed = false;

  /** Loads the policy now; throws ConfigError when it is invalid (the gateway must not start without one). */
  constructor(dir: string, opts: PolicyStoreOptions = {}) {
    this.dir = resolve(dir);
    this.#load = opts.load ?? loadPolicies;
    this.#debounceMs = opts.debounceMs ?? 150;
    this.#policy = this.#load(this.dir);
  }

  current(): Policy {
    return this.#policy;
  }

  /** Loads the folder again; on success the new policy is in force, otherwise nothing changes. */
  reload(): { ok: true; changed: boolean } | { ok: false; error: ConfigError } {
    let next: Policy;
    try {
      next = this.#load(this.dir);
    } catch (e) {
      if (e instanceof ConfigError) return { ok: false, error: e };
      const err = new ConfigError([{ file: this.dir, line: 0, col: 0, key: '', message: `policy load failed: ${e instanceof Error ? e.message : String(e)}` }]);
      return { ok: false, error: err };
    }
    const changed = next.digest !== this.#policy.digest;
    if (changed) this.#policy = next;
    return { ok: true, changed };
  }

  /**
   * Watches the policies folder (and the folders of extended files, e.g.
   * presets/) and reloads after changes settle. `onChange` hears every
   * reload that changed the policy or failed. Returns an unsubscribe function.
   */
  watch(onChange: (ev: PolicyChange) => void): () => void {
    if (this.#closed) throw new GatehouseError('INTERNAL', 'PolicyStore is closed');
    this.#listeners.add(onChange);
    if (this.#watchers.length === 0) this.#rewatch();
    return () => {
      this.#listeners.delete(onChange);
      if (this.#listeners.size === 0) this.#unwatch();
    };
  }

  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#unwatch();
  }

  #dirsToWatch(): string[] {
    const dirs = new Set<string>([this.dir]);
    for (const f of this.#policy.files) dirs.add(dirname(f));
    return [...dirs];
  }

  #rewatch(): void {
    this.#unwatchFs();
    for (const d of this.#dirsToWatch()) {
      try {
        const w = watch(d, { persistent: false }, (_event, name) => this.#onFsEvent(name === null ? d : join(d, name.toString())));
        w.on('error', () => this.#onFsEvent(d));
        this.#watchers.push(w);
      } catch {
        // A folder that cannot be watched (removed?) shows up as a load error on the next reload.
      }
    }
  }

  #onFsEvent(path: string): void {
    if (this.#closed) return;
    this.#changed.add(path);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#fire(), this.#debounceMs);
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    if (this.#closed) return;
    const changed = [...this.#changed].sort();
    this.#changed.clear();
    const r = this.reload();
    let ev: PolicyChange;
    if (r.ok) {
      if (!r.changed) return;
      ev = { ok: true, files: [...this.#policy.files], changed, digest: this.#policy.digest };
      // The set of extended files may have changed: watch their folders too.
      this.#rewatch();
    } else {
      ev = { ok: false, error: r.error.message, files: [...this.#policy.files], changed, digest: this.#policy.digest };
    }
    for (const l of [...this.#listeners]) {
      try {
        l(ev);
      } catch {
        // A listener's failure must not stop the others from hearing about the change.
      }
    }
  }

  #unwatchFs(): void {
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
  }

  #unwatch(): void {
    this.#unwatchFs();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#changed.clear();
  }
}
