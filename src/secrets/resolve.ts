import { createHmac, randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { SecretBindings } from './bindings.js';
import { Redactor } from './redact.js';
import { checkForSink, type Sink } from './safety.js';
import type { SecretStore } from './store.js';
import { isSet } from './presence.js';
import { parseTemplate } from './template.js';
import { watchNotices } from './notice.js';
import { isLoginEntry, isLoginEntryOf, learnLogin } from './oauth/login.js';

export interface RenderContext {
  connector: string;
  /** Where the value goes, for messages: "header Authorization", "env GITHUB_TOKEN". */
  where: string;
  /** What the value may contain: 'header' (the default, strict: no control characters) or 'env' (no NUL). */
  sink?: Sink;
}

/**
 * Renders `${secret:NAME}` templates at the last moment, in the gateway only.
 * Missing secrets fail closed: SECRET_MISSING naming the fix, never ''.
 */
export interface SecretResolver {
  render(template: string, ctx: RenderContext): Promise<string>;
  /**
   * Calls `onChange` when one of `names` changed since it was last rendered:
   * a new value, set or deleted, or the keychain became (un)reachable.
   * Returns the function that stops watching.
   */
  watch?(names: readonly string[], onChange: (changed: string[]) => void): () => void;
  /**
   * Keychain entries that are not `${secret:}` values but a connector's own
   * state: its upstream OAuth logins (src/secrets/oauth/). Each is given only
   * to the connector whose name it carries, learned for redaction when read,
   * and watched like a secret.
   */
  entry?(name: string, connector: string): Promise<string | null>;
  setEntry?(name: string, connector: string, value: string): Promise<void>;
  /** The names of `connector`'s entries in the store (names only). */
  entryNames?(connector: string): Promise<string[]>;
}

export interface StoreResolverOptions {
  /** Who may receive which secret (from the registry); a secret not bound to the rendering connector is refused. */
  bindings: SecretBindings;
  /** Learns every value read, so that it can be redacted everywhere. */
  redactor?: Redactor;
  /**
   * How long a value read from the store is reused. A keychain read costs
   * ~10 ms over D-Bus; http connectors render on every request. A rotation
   * made with `gatehouse secret set` clears the cache at once (notice file);
   * one made with another tool takes effect within this time.
   */
  cacheMs?: number;
  /** How often watched secrets are re-read to detect a rotation made outside Gatehouse. */
  pollMs?: number;
  /** Directory that `gatehouse secret set/delete` touch after a change (`<state>/secrets`). */
  noticeDir?: string;
  logger?: Logger;
}

export const DEFAULT_CACHE_MS = 500;
export const DEFAULT_POLL_MS = 3_000;

type Read = { state: 'value'; value: string } | { state: 'missing' } | { state: 'unavailable'; error: GatehouseError };

export class StoreResolver implements SecretResolver {
  readonly redactor: Redactor;
  private readonly cache = new Map<string, { read: Read; at: number; stamp: number }>();
  private readonly inflight = new Map<string, { p: Promise<Read>; stamp: number }>();
  /** HMAC key for fingerprints: a value's fingerprint says nothing outside this process. */
  private readonly fpKey = randomBytes(32);
  /** name → fingerprint of what was last handed out (or 'missing'/'unavailable'). */
  private readonly served = new Map<string, string>();
  /** A read's fingerprint, made once: every render notes what it handed out, and most renders hit the cache. */
  private readonly fingerprints = new WeakMap<Read, string>();
  private readonly watchers = new Set<{ names: Set<string>; onChange: (changed: string[]) => void }>();
  private pollTimer: NodeJS.Timeout | undefined;
  private stopNotices: (() => void) | undefined;
  private polling: Promise<void> | undefined;
  private readonly cacheMs: number;
  private readonly pollMs: number;
  private readonly noticeFile: string | undefined;

  constructor(
    private readonly store: SecretStore,
    private readonly opts: StoreResolverOptions,
  ) {
    this.redactor = opts.redactor ?? new Redactor();
    this.cacheMs = opts.cacheMs ?? DEFAULT_CACHE_MS;
    this.pollMs = opts.pollMs ?? DEFAULT_POLL_MS;
    this.noticeFile = opts.noticeDir === undefined ? undefined : join(opts.noticeDir, 'changed');
  }

  async render(template: string, ctx: RenderContext): Promise<string> {
    let out = '';
    for (const part of parseTemplate(template)) {
      if ('text' in part) {
        out += part.text;
        continue;
      }
      const name = part.secret;
      // An OAuth login (refresh token, client secret) is the gateway's state, never a value to send: only its access token goes, as Authorization.
      if (isLoginEntry(name)) {
        throw new GatehouseError('SECRET_UNSAFE', `"${name}" is an OAuth login, not a secret (${ctx.where} of connector "${ctx.connector}"); the gateway sends its access token itself`, {
          details: { secret: name, connector: ctx.connector },
        });
      }
      const owner = this.opts.bindings.owner.get(name);
      if (owner !== ctx.connector) {
        throw new GatehouseError('SECRET_UNSAFE', `secret "${name}" is not bound to connector "${ctx.connector}" (${ctx.where})${owner === undefined ? '' : `; it belongs to "${owner}"`}`, {
          details: { secret: name, connector: ctx.connector },
        });
      }
      const read = await this.read(name);
      this.served.set(name, this.fingerprint(read));
      if (read.state === 'unavailable') throw read.error;
      if (read.state === 'missing') {
        throw new GatehouseError(
          'SECRET_MISSING',
          `secret "${name}" (${ctx.where} of connector "${ctx.connector}") is not set; run: gatehouse secret set ${name}`,
          { details: { secret: name, connector: ctx.connector } },
        );
      }
      const verdict = checkForSink(read.value, ctx.sink ?? 'header');
      if (!verdict.ok) {
        throw new GatehouseError(
          'SECRET_UNSAFE',
          `secret "${name}" (${ctx.where} of connector "${ctx.connector}") ${verdict.reason}; nothing was sent. Store a clean value: gatehouse secret set ${name}`,
          { details: { secret: name, connector: ctx.connector } },
        );
      }
      out += read.value;
    }
    return out;
  }

  async entry(name: string, connector: string): Promise<string | null> {
    this.ownEntry(name, connector);
    const read = await this.read(name);
    this.served.set(name, this.fingerprint(read));
    if (read.state === 'unavailable') throw read.error;
    return read.state === 'value' ? read.value : null;
  }

  async setEntry(name: string, connector: string, value: string): Promise<void> {
    this.ownEntry(name, connector);
    learnLogin(this.redactor, name, value);
    await this.store.set(name, value);
    const read: Read = { state: 'value', value };
    this.cache.set(name, { read, at: performance.now(), stamp: this.noticeStamp() });
    // Written here: not a change for the watchers.
    this.served.set(name, this.fingerprint(read));
  }

  async entryNames(connector: string): Promise<string[]> {
    return (await this.store.list()).filter((n) => isLoginEntryOf(connector, n));
  }

  private ownEntry(name: string, connector: string): void {
    if (!isLoginEntryOf(connector, name)) throw new GatehouseError('SECRET_UNSAFE', `keychain entry "${name}" does not belong to connector "${connector}"`, { details: { secret: name, connector } });
  }

  /** Reads every name (ignoring failures) so their values are redacted before any is used. */
  async preload(names: Iterable<string>): Promise<void> {
    await Promise.all([...names].map((n) => this.read(n)));
  }

  /** Forgets cached values (all, or some names); the next render reads the store. */
  invalidate(names?: readonly string[]): void {
    if (names === undefined) this.cache.clear();
    else for (const n of names) this.cache.delete(n);
  }

  /**
   * When `gatehouse secret set/delete` last wrote its notice. Checked on every
   * cache hit (one stat), so the first call after `secret set` returns always
   * carries the new value, even before the folder watch fires.
   */
  private noticeStamp(): number {
    if (this.noticeFile === undefined) return 0;
    try {
      // No notice yet (no `secret set` in this state directory) is the common case: no exception built for it on every render.
      return statSync(this.noticeFile, { throwIfNoEntry: false })?.mtimeMs ?? 0;
    } catch {
      return 0;
    }
  }

  private async read(name: string, fresh = false): Promise<Read> {
    const hit = this.cache.get(name);
    const stamp = this.noticeStamp();
    if (!fresh && hit && hit.stamp === stamp && performance.now() - hit.at < this.cacheMs) return hit.read;
    const pending = this.inflight.get(name);
    if (pending && pending.stamp === stamp) return pending.p;
    const p = this.readStore(name, stamp).finally(() => {
      if (this.inflight.get(name)?.p === p) this.inflight.delete(name);
    });
    this.inflight.set(name, { p, stamp });
    return p;
  }

  private async readStore(name: string, stamp: number): Promise<Read> {
    let read: Read;
    try {
      const value = await this.store.get(name);
      read = isSet(value) ? { state: 'value', value } : { state: 'missing' };
    } catch (e) {
      const error = e instanceof GatehouseError ? e : new GatehouseError('KEYCHAIN_UNAVAILABLE', `${this.store.description} failed: ${errorMessage(e)}`);
      read = { state: 'unavailable', error };
    }
    if (read.state === 'value') {
      if (isLoginEntry(name)) learnLogin(this.redactor, name, read.value);
      else this.redactor.learn(name, read.value);
    }
    // A failure is not cached: the next render asks the keychain again.
    if (read.state === 'value' || read.state === 'missing') this.cache.set(name, { read, at: performance.now(), stamp });
    else this.cache.delete(name);
    return read;
  }

  private fingerprint(read: Read): string {
    if (read.state !== 'value') return read.state;
    let fp = this.fingerprints.get(read);
    if (fp === undefined) {
      fp = createHmac('sha256', this.fpKey).update(read.value).digest('base64');
      this.fingerprints.set(read, fp);
    }
    return fp;
  }

  /** Of every entry whose name starts with `prefix`: names and values, as one fingerprint (a watch on `prefix*`). */
  private async prefixFingerprint(prefix: string): Promise<string> {
    let names: string[];
    try {
      names = (await this.store.list()).filter((n) => n.startsWith(prefix)).sort();
    } catch {
      return 'unavailable';
    }
    const parts = await Promise.all(names.map(async (n) => `${n}=${this.fingerprint(await this.read(n, true))}`));
    return createHmac('sha256', this.fpKey).update(parts.join('\n')).digest('base64');
  }

  /** `names` may hold prefixes (`NAME.oauth.agent.*`): a new, changed or deleted entry under one counts as a change of it. */
  watch(names: readonly string[], onChange: (changed: string[]) => void): () => void {
    const w = { names: new Set(names), onChange };
    if (w.names.size === 0) return () => undefined;
    for (const n of w.names) {
      if (n.endsWith('*') && !this.served.has(n)) void this.prefixFingerprint(n.slice(0, -1)).then((fp) => void (this.served.has(n) || this.served.set(n, fp)));
    }
    this.watchers.add(w);
    this.startWatching();
    return () => {
      this.watchers.delete(w);
      if (this.watchers.size === 0) this.stopWatching();
    };
  }

  private startWatching(): void {
    if (this.pollTimer === undefined) {
      this.pollTimer = setInterval(() => void this.poll(), this.pollMs);
      this.pollTimer.unref();
    }
    if (this.stopNotices === undefined && this.opts.noticeDir !== undefined) {
      this.stopNotices = watchNotices(this.opts.noticeDir, () => {
        this.invalidate();
        void this.poll();
      }, this.opts.logger);
    }
  }

  private stopWatching(): void {
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    this.stopNotices?.();
    this.stopNotices = undefined;
  }

  /** Re-reads every watched secret; tells watchers which ones differ from what was last served. */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    const names = new Set<string>();
    for (const w of this.watchers) for (const n of w.names) names.add(n);
    const changed = new Set<string>();
    await Promise.all(
      [...names].map(async (n) => {
        const pattern = n.endsWith('*');
        const fp = pattern ? await this.prefixFingerprint(n.slice(0, -1)) : this.fingerprint(await this.read(n, true));
        const before = this.served.get(n);
        if (pattern && before === undefined) this.served.set(n, fp);
        if (before !== undefined && before !== fp) {
          changed.add(n);
          // Watchers are told once; a render updates this again.
          this.served.set(n, fp);
        }
      }),
    );
    if (changed.size === 0) return;
    this.opts.logger?.info({ secrets: [...changed] }, 'secret changed');
    for (const w of this.watchers) {
      const mine = [...changed].filter((n) => w.names.has(n));
      if (mine.length > 0) w.onChange(mine);
    }
  }

  close(): void {
    this.watchers.clear();
    this.stopWatching();
  }
}
