/**
 * Where a login is read and written: through the gateway's resolver (bound to
 * its connector, learned for redaction, watched), or straight in a secret
 * store (the CLI's `connector login`, which then tells a running gateway).
 */
import { GatehouseError } from '../../errors.js';
import type { SecretResolver } from '../resolve.js';
import type { SecretStore } from '../store.js';
import { isSet } from '../presence.js';
import { agentOfEntry, loginEntry, parseLogin, serializeLogin, type OAuthLogin } from './login.js';

export interface LoginStore {
  /** The entry's name in the keychain. */
  readonly entry: string;
  /** null: no login. Throws KEYCHAIN_UNAVAILABLE, or OAUTH_LOGIN_REQUIRED for an entry that is not a login. */
  read(): Promise<OAuthLogin | null>;
  write(login: OAuthLogin): Promise<void>;
}

function parsed(entry: string, text: string | null): OAuthLogin | null {
  if (!isSet(text)) return null;
  const login = parseLogin(text);
  if (login === undefined) throw new GatehouseError('OAUTH_LOGIN_REQUIRED', `the keychain entry "${entry}" is not a login Gatehouse wrote`, { details: { secret: entry } });
  return login;
}

/** A login through the gateway's resolver. */
export function resolverLoginStore(secrets: SecretResolver, connector: string, agent?: string): LoginStore {
  const entry = loginEntry(connector, agent);
  if (secrets.entry === undefined || secrets.setEntry === undefined) throw new GatehouseError('INTERNAL', 'this secret resolver keeps no keychain entries (OAuth logins need one)');
  const read = secrets.entry.bind(secrets);
  const write = secrets.setEntry.bind(secrets);
  return {
    entry,
    read: async () => parsed(entry, await read(entry, connector)),
    write: (login) => write(entry, connector, serializeLogin(login)),
  };
}

/** A login straight in a store (the CLI). */
export function storeLoginStore(store: SecretStore, connector: string, agent?: string): LoginStore {
  const entry = loginEntry(connector, agent);
  return {
    entry,
    read: async () => parsed(entry, await store.get(entry)),
    write: (login) => store.set(entry, serializeLogin(login)),
  };
}

/** The agents with a login of their own for `connector`, from entry names. */
export function agentsIn(connector: string, names: readonly string[]): string[] {
  return names.flatMap((n) => {
    const a = agentOfEntry(connector, n);
    return a === undefined ? [] : [a];
  }).sort();
}
