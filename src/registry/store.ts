/**
 * The registry in force, with hot reload (as src/policy/store.ts does for
 * policy). A reload validates the whole folder and hands the new registry on
 * as one object; an invalid folder keeps the old registry in force.
 *
 * Changes are seen by fs.watch (debounced: editors write in several steps)
 * and, where fs.watch misses them (network filesystems, a folder replaced
 * under us), by a periodic check of the files' names, sizes and mtimes.
 */
import { readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../config/load-yaml.js';
import { loadRegistry, type Registry } from './load.js';

export interface RegistryChange {
  /** true: `registry` is the new one; false: the change was invalid and the old registry stays. */
  ok: boolean;
  /** The ConfigError message (file:line:col: key: problem), when not ok. */
  error?: string;
  /** The registry in force after the change. */
  registry: Registry;
}

export interface RegistryStoreOptions {
  debounceMs?: number;
  /** How often the folder's listing and mtimes are compared (0: never). */
  pollMs?: number;
  load?: (dir: string) => Registry;
}

/** Names, sizes and mtimes of the folder's YAML files: changes when any of them does. */
function fingerprint(dir: string): string {
  try {
    return readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort()
      .map((f) => {
        const st = statSync(join(dir, f), { throwIfNoEntry: false });
        return st ? `${f}:${st.ino}:${st.size}:${st.mtimeMs}` : `${f}:gone`;
      })
      .join('\n');
  } catch (e) {
    return `unreadable:${(e as NodeJS.ErrnoException).code ?? ''}`;
  }
}

export class RegistryStore {
  readonly dir: string;
  #registry: Registry;
  #digest: string;
  readonly #load: (dir: string) => Registry;
  readonly #debounceMs: number;
  readonly #pollMs: number;
  #listener: ((ev: RegistryChange) => void) | undefined;
  #watcher: FSWatcher | undefined;
  #poller: NodeJS.Timeout | undefined;
  #timer: NodeJS.Timeout | undefined;
  #seen = '';
  #dirIno = 0;
  #lastError: string | undefined;

  /** Starts from a registry already loaded (and audited) at start-up. */
  constructor(initial: Registry, opts: RegistryStoreOptions = {}) {
    this.dir = resolve(initial.dir);
    this.#registry = initial;
    this.#digest = JSON.stringify(initial.connectors);
    this.#load = opts.load ?? loadRegistry;
    this.#debounceMs = opts.debounceMs ?? 150;
    this.#pollMs = opts.pollMs ?? 2000;
  }

  current(): Registry {
    return this.#registry;
  }

  /** Watches the folder; `onChange` hears every reload that changed the registry or failed. Returns the stop function. */
  watch(onChange: (ev: RegistryChange) => void): () => void {
    this.close();
    this.#listener = onChange;
    this.#seen = fingerprint(this.dir);
    this.#watchDir();
    if (this.#pollMs > 0) {
      this.#poller = setInterval(() => {
        if (fingerprint(this.dir) !== this.#seen) this.#schedule();
      }, this.#pollMs);
      this.#poller.unref();
    }
    return () => this.close();
  }

  /** fs.watch follows the folder's inode: a folder replaced under us (rename over it) needs a new watch. */
  #watchDir(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#dirIno = statSync(this.dir, { throwIfNoEntry: false })?.ino ?? 0;
    try {
      this.#watcher = watch(this.dir, { persistent: false }, () => this.#schedule());
      this.#watcher.on('error', () => this.#schedule());
    } catch {
      // Cannot watch (folder gone?): the poll still sees it come back.
    }
  }

  close(): void {
    this.#listener = undefined;
    this.#watcher?.close();
    this.#watcher = undefined;
    clearInterval(this.#poller);
    this.#poller = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (!this.#listener) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#fire(), this.#debounceMs);
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    const listener = this.#listener;
    if (!listener) return;
    this.#seen = fingerprint(this.dir);
    if ((statSync(this.dir, { throwIfNoEntry: false })?.ino ?? 0) !== this.#dirIno) this.#watchDir();
    let next: Registry;
    try {
      next = this.#load(this.dir);
    } catch (e) {
      const error = e instanceof ConfigError ? e.message : `registry load failed: ${e instanceof Error ? e.message : String(e)}`;
      // The same broken file seen again (an mtime touch) is not news.
      if (error === this.#lastError) return;
      this.#lastError = error;
      return listener({ ok: false, error, registry: this.#registry });
    }
    this.#lastError = undefined;
    const digest = JSON.stringify(next.connectors);
    if (digest === this.#digest) return;
    this.#registry = next;
    this.#digest = digest;
    listener({ ok: true, registry: next });
  }
}
