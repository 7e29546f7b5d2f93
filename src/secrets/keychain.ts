import { AsyncEntry, findCredentialsAsync, type EntryOptions } from '@napi-rs/keyring';
import { GatehouseError, errorMessage } from '../errors.js';
import type { SecretStore } from './store.js';

/** The one keychain service under which every Gatehouse secret is stored (one entry per secret). */
export const KEYCHAIN_SERVICE = 'gatehouse';
/**
 * Written on the "not found" path only, to tell a missing secret from a locked
 * keyring: a locked Secret Service answers a lookup of an absent item with
 * "nothing" instead of an error, but refuses a write. Not a valid secret name,
 * so it never collides with one and `list()` hides it.
 */
const PROBE_ACCOUNT = '.gatehouse-probe';
const PROBE_OK_MS = 2_000;

export interface KeychainOptions {
  service?: string;
  platform?: NodeJS.Platform;
  env?: NodeJS.ProcessEnv;
}

/**
 * Secrets in the OS keychain through `@napi-rs/keyring`: macOS Keychain,
 * Windows Credential Manager, Linux Secret Service (gnome-keyring, KWallet,
 * KeePassXC). On Linux the store is pinned to the Secret Service: the
 * library's silent fallback to the kernel keyring would keep secrets in
 * memory only, lost at the next boot.
 */
export class KeychainStore implements SecretStore {
  readonly service: string;
  readonly description: string;
  private readonly platform: NodeJS.Platform;
  private readonly env: NodeJS.ProcessEnv;
  private readonly entryOptions: EntryOptions;
  private probedOkAt = -Infinity;
  /**
   * One entry per name, reused: each entry holds its own D-Bus connection
   * until garbage-collected, so a fresh entry per read would pile up
   * connections (a bus refuses more than 256 per user by default).
   */
  private readonly entries = new Map<string, AsyncEntry>();

  constructor(opts: KeychainOptions = {}) {
    this.service = opts.service ?? KEYCHAIN_SERVICE;
    this.platform = opts.platform ?? process.platform;
    this.env = opts.env ?? process.env;
    this.entryOptions = this.platform === 'linux' ? { linux: { store: 'secret-service' } } : {};
    this.description = keychainName(this.platform);
  }

  private entry(name: string): AsyncEntry {
    let e = this.entries.get(name);
    if (e === undefined) {
      e = new AsyncEntry(this.service, name, this.entryOptions);
      this.entries.set(name, e);
    }
    return e;
  }

  async get(name: string): Promise<string | null> {
    let value: string | null;
    try {
      value = await this.entry(name).getPassword();
    } catch (e) {
      throw this.unavailable(e);
    }
    if (value !== null) return value;
    await this.probe();
    return null;
  }

  async set(name: string, value: string): Promise<void> {
    try {
      await this.entry(name).setPassword(value);
    } catch (e) {
      throw this.unavailable(e, value);
    }
  }

  async delete(name: string): Promise<boolean> {
    let deleted: boolean;
    try {
      deleted = await this.entry(name).deleteCredential();
    } catch (e) {
      throw this.unavailable(e);
    }
    if (!deleted) await this.probe();
    return deleted;
  }

  async list(): Promise<string[]> {
    let found;
    try {
      found = await findCredentialsAsync(this.service);
    } catch (e) {
      throw this.unavailable(e);
    }
    // The library hands back values too; keep the names only.
    return [...new Set(found.map((c) => c.account).filter((a) => a !== PROBE_ACCOUNT))].sort();
  }

  /** Throws KEYCHAIN_UNAVAILABLE when the keychain cannot be written (locked, no service); a cheap no-op when it could recently. */
  async probe(): Promise<void> {
    if (performance.now() - this.probedOkAt < PROBE_OK_MS) return;
    try {
      await this.entry(PROBE_ACCOUNT).setPassword('ok');
    } catch (e) {
      throw this.unavailable(e);
    }
    this.probedOkAt = performance.now();
  }

  /** `value`: the secret being written, scrubbed from the library's reason as a precaution (the cause is not kept then). */
  private unavailable(cause: unknown, value?: string): GatehouseError {
    this.probedOkAt = -Infinity;
    // The connections may be dead (bus or keyring restarted): start afresh next time.
    this.entries.clear();
    let reason = errorMessage(cause);
    if (value !== undefined && value !== '') reason = reason.split(value).join('[REDACTED]');
    return new GatehouseError('KEYCHAIN_UNAVAILABLE', unavailableMessage(this.platform, reason, this.env), value === undefined ? { cause } : {});
  }
}

export function keychainName(platform: NodeJS.Platform): string {
  if (platform === 'darwin') return 'the macOS Keychain';
  if (platform === 'win32') return 'the Windows Credential Manager';
  return 'the Secret Service (org.freedesktop.secrets on the D-Bus session bus)';
}

/** Which keychain is missing and how to start or unlock it. The library's reason never holds a secret value. */
export function unavailableMessage(platform: NodeJS.Platform, reason: string, env: NodeJS.ProcessEnv): string {
  const why = reason.replace(/\s+/g, ' ').trim().slice(0, 300);
  const locked = /lock|prompt|dismiss|denied/i.test(reason);
  const head = `the OS keychain is unavailable: ${keychainName(platform)} ${locked ? 'is locked' : 'cannot be reached'} (${why}).`;
  if (platform === 'darwin') {
    return `${head} Unlock the login keychain (security unlock-keychain ~/Library/Keychains/login.keychain-db) and run the command again from the logged-in user's session.`;
  }
  if (platform === 'win32') {
    return `${head} Run Gatehouse as the logged-in user whose Credential Manager holds the secrets (services.msc: "Credential Manager" must be running).`;
  }
  const bus = env.DBUS_SESSION_BUS_ADDRESS;
  const busHint =
    bus === undefined || bus === ''
      ? ' DBUS_SESSION_BUS_ADDRESS is not set: there is no D-Bus session bus in this environment.'
      : locked
        ? ''
        : ` DBUS_SESSION_BUS_ADDRESS=${bus} does not lead to a Secret Service.`;
  const fix = locked
    ? ' Unlock the keyring (log in to the desktop, or in a headless session: printf %s "$KEYRING_PASSWORD" | gnome-keyring-daemon --replace --unlock --components=secrets), or unlock KeePassXC\'s database with Secret Service integration enabled.'
    : ' Start a Secret Service: log in to a desktop session (GNOME/KDE), or open KeePassXC with Secret Service integration enabled, or on a headless machine: dbus-run-session -- sh -c \'printf %s "$KEYRING_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets; gatehouse serve\'.';
  return head + busHint + fix;
}
